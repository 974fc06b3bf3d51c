//! Fuzz `--format auto`: detect the format from the input's first lines, then parse
//! the whole input with whichever format was detected (if any).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let input = common::text(data);
    if let Some(spec) = scanwatch_formats::detect(input.lines()) {
        // Detection only picks a registered format, by a name that finds it again.
        let by_name =
            scanwatch_formats::format_by_name(spec.name()).expect("detected format is registered");
        assert_eq!(by_name.name(), spec.name());
        common::check(spec, &input);
    }
});

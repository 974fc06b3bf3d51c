//! Fuzz the `cisco-asa` parser: any bytes, parsed as a cisco-asa log, must keep the invariants
//! in `common.rs` and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let input = common::text(data);
    let spec = scanwatch_formats::format_by_name("cisco-asa").expect("format is registered");
    common::check(spec, &input);
});

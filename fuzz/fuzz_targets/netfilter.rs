//! Fuzz the `netfilter` parser: any bytes, parsed as a netfilter log, must keep the
//! invariants in `common.rs` and never panic.
//!
//! With `SCANWATCH_FUZZ_FAST_PATH=1` in the environment it also checks that the fast
//! path gives, line by line, exactly what the general tokenizer gives
//! (`NetfilterParser::parse_line_general`). That check is opt-in because it fails today
//! on malformed lines with repeated or out-of-order keys (see the fuzzing notes in the
//! report that added it); `scripts/fuzz.sh` runs without it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scanwatch_formats::{LineParser, NetfilterParser};

#[path = "common.rs"]
mod common;

static CHECK_FAST_PATH: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("SCANWATCH_FUZZ_FAST_PATH").is_some_and(|v| v != "0"));

fuzz_target!(|data: &[u8]| {
    let input = common::text(data);
    let spec = scanwatch_formats::format_by_name("netfilter").expect("format is registered");
    common::check(spec, &input);

    if *CHECK_FAST_PATH {
        // Two parsers fed the same lines keep the same state (year, cached action).
        let mut fast = NetfilterParser::new(&common::opts());
        let mut general = NetfilterParser::new(&common::opts());
        for (i, line) in input.lines().enumerate() {
            let a = fast.parse_line(line);
            let b = general.parse_line_general(line);
            assert_eq!(a, b, "line {}: fast path and general tokenizer differ on {line:?}", i + 1);
        }
    }
});

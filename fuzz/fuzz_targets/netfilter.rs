//! Fuzz the `netfilter` parser: any bytes, parsed as a netfilter log, must keep the
//! invariants in `common.rs` and never panic; and the fast path must give, line by
//! line, exactly what the general tokenizer gives (`NetfilterParser::parse_line_general`);
//! and the hand address reader gives, on every word, what std's parser gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_formats::{LineParser, NetfilterParser};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let input = common::text(data);
    let spec = scanwatch_formats::format_by_name("netfilter").expect("format is registered");
    common::check(spec, &input);

    // Two parsers fed the same lines keep the same state (year, cached action).
    let mut fast = NetfilterParser::new(&common::opts());
    let mut general = NetfilterParser::new(&common::opts());
    for w in input.split([' ', '=', '\n']) {
        assert_eq!(
            scanwatch_formats::ip::parse_ip(w),
            w.parse::<std::net::IpAddr>().ok(),
            "{w:?}"
        );
    }
    for (i, line) in input.lines().enumerate() {
        let a = fast.parse_line(line);
        let b = general.parse_line_general(line);
        assert_eq!(
            a,
            b,
            "line {}: fast path and general tokenizer differ on {line:?}",
            i + 1
        );
    }
});

//! Fuzz the centre's reader of a batch (`scanwatch_event::batch`): the first byte
//! picks the body's encoding (identity, gzip, zstd), the rest is the body. Any
//! bytes must decompress within the bound or be refused, and read as events
//! (each line's number in order, within the body, at most the bound of events)
//! or be refused at a line that is there, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_event::batch::{decompress, read_lines, BatchError, BodyError, Encoding};

/// Small bounds, so that the fuzzer reaches them.
const LIMIT: usize = 64 << 10;
const MAX_EVENTS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let encoding = match pick % 3 {
        0 => Encoding::Identity,
        1 => Encoding::Gzip,
        _ => Encoding::Zstd,
    };
    let raw = match decompress(encoding, body, LIMIT) {
        Ok(raw) => raw,
        Err(BodyError::TooLarge { limit }) => {
            assert_eq!(limit, LIMIT);
            assert_ne!(encoding, Encoding::Identity, "an identity body is taken as it is");
            return;
        }
        Err(BodyError::Invalid { .. }) => return,
    };
    if encoding != Encoding::Identity {
        assert!(raw.len() <= LIMIT, "decompressed past the bound");
    }
    let Ok(text) = std::str::from_utf8(&raw) else {
        return;
    };
    let lines = text.lines().count();
    let filled = text.lines().filter(|l| !l.trim().is_empty()).count();
    let mut seen = Vec::new();
    match read_lines(text, MAX_EVENTS, |n, _, e| seen.push((n, e))) {
        Ok(()) => assert_eq!(seen.len(), filled, "a line that is not blank was skipped"),
        Err(BatchError::TooMany { max }) => {
            assert_eq!(max, MAX_EVENTS);
            assert!(filled > MAX_EVENTS);
        }
        Err(BatchError::Line { line, .. }) => {
            assert!(line >= 1 && line <= lines, "bad line {line} of {lines}");
            let l = text.lines().nth(line - 1).unwrap_or_default();
            assert!(!l.trim().is_empty(), "a blank line refused");
            assert!(seen.last().is_none_or(|(n, _)| *n < line));
        }
    }
    assert!(seen.len() <= MAX_EVENTS);
    let mut last = 0;
    for (n, e) in &seen {
        assert!(*n > last && *n <= lines, "line {n} after {last} of {lines}");
        last = *n;
        assert!(e.count >= 1);
        if e.proto.has_ports() {
            assert!(e.dst_port.is_some(), "{} event without dst_port", e.proto);
        }
    }
});

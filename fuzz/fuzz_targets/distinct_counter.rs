//! Fuzz the decoder of one distinct counter (the store's per-hour port cells): any
//! bytes decode to a counter or a reason, never panic; a decoded counter encodes to
//! bytes that decode again, and from then on its count is stable (the first
//! encoding may turn an HLL4 sketch into HLL8, which can move the estimate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_aggregate::{decode_distinct, encode_distinct};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = decode_distinct(data) {
        let first = encode_distinct(&d);
        let again = decode_distinct(&first).expect("own bytes decode");
        let third = decode_distinct(&encode_distinct(&again)).expect("own bytes decode");
        assert_eq!(third.distinct(), again.distinct());
        let mut merged = again.clone();
        merged.merge(&d, 64);
        let _ = merged.distinct();
    }
});

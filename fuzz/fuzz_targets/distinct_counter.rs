//! Fuzz the decoder of one distinct counter (the store's per-hour port cells): any
//! bytes decode to a counter or a reason, never panic, and a decoded counter encodes
//! and decodes again to the same count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_aggregate::{decode_distinct, encode_distinct};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = decode_distinct(data) {
        let again = decode_distinct(&encode_distinct(&d)).expect("own bytes decode");
        assert_eq!(again.distinct(), d.distinct());
        let mut merged = again.clone();
        merged.merge(&d, 64);
        assert!(merged.distinct() + 1 >= d.distinct() || !d.is_exact());
    }
});

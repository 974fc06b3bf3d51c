//! Fuzz the decoder of one distinct counter (the store's per-hour port cells): any
//! bytes decode to a counter or a reason, never panic; a decoded counter encodes to
//! bytes that decode again, and from then on its count is stable (the first
//! encoding may turn an HLL4 sketch into HLL8, which can move the estimate).
//!
//! And the union's reading of counters from their bytes (`add_encoded`, which
//! merges HLL8 arrays register by register): never panics, reads nothing that
//! does not decode, and counts what adding the decoded counters counts. The input is also written over
//! a real HLL8 array image (its first two bytes say where), so that the array path
//! is reached.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scanwatch_aggregate::{decode_distinct, encode_distinct, key_hash, Distinct, DistinctUnion};

/// The image of a counter of 20,000 keys: an HLL8 array.
fn array() -> &'static [u8] {
    static ARRAY: OnceLock<Vec<u8>> = OnceLock::new();
    ARRAY.get_or_init(|| {
        let mut d = Distinct::default();
        (0u64..20_000).for_each(|k| d.add_hash(key_hash(&k.to_le_bytes()), 64));
        encode_distinct(&d)
    })
}

/// The union of `parts` by their bytes, and by the decoded counters when every
/// part decodes.
fn both(parts: &[&[u8]]) -> (Option<u64>, Option<u64>) {
    let mut by_bytes = DistinctUnion::new(64);
    let read = parts.iter().all(|p| by_bytes.add_encoded(p).is_ok());
    let a = by_bytes.finish().distinct();
    let mut decoded = DistinctUnion::new(64);
    for p in parts {
        match decode_distinct(p) {
            Ok(d) => decoded.add(&d),
            Err(_) => return (read.then_some(a), None),
        }
    }
    (read.then_some(a), Some(decoded.finish().distinct()))
}

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
    let (a, b) = both(&[data, data]);
    assert!(a.is_none() || b.is_some(), "read by bytes, refused decoded");
    if let (Some(a), Some(b)) = (a, b) {
        assert_eq!(a, b, "the input twice");
    }
    if data.len() >= 2 {
        let good = array();
        let at = usize::from(u16::from_le_bytes([data[0], data[1]])) % good.len();
        let mut forged = good.to_vec();
        for (i, b) in data[2..].iter().enumerate().take(good.len() - at) {
            forged[at + i] = *b;
        }
        for parts in [[good, &forged[..]], [&forged[..], good]] {
            let (a, b) = both(&parts);
            assert!(a.is_none() || b.is_some(), "read by bytes, refused decoded");
            if let (Some(a), Some(b)) = (a, b) {
                assert_eq!(a, b, "a forged array at {at}");
            }
        }
    }
});

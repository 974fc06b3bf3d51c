//! What the partial-window fuzz targets check on any bytes: they decode to a
//! window (with each sensor's latest event time) or a reason, never panic, a
//! decoded part encodes and decodes again to the same part, and merges with it.

use scanwatch_aggregate::codec::decode_partial_body;
use scanwatch_aggregate::{decode_partial, decode_window, encode_partial};

pub fn check(data: &[u8]) {
    // The checksummed form first (almost always refused), then the body without it,
    // which is where the structure is.
    let _ = decode_window(data);
    if let Ok((w, times)) = decode_partial_body(data) {
        let (again, again_times) = decode_partial(&encode_partial(&w, &times)).expect("own bytes decode");
        assert_eq!(again.cells.len(), w.cells.len());
        assert_eq!(again.totals.all_events, w.totals.all_events);
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(again_times, sorted);
        // A spread's cap and the ranking its sample was drawn under read back
        // as written (a foreign sample stays foreign).
        for (h, sp) in w.spreads.iter() {
            let back = again.spreads.get(*h).expect("a spread reads back");
            assert_eq!((back.capped, back.foreign), (sp.capped, sp.foreign));
        }
        for (k, c) in &again.cells {
            // A sampled witness set reads back as written (same kept sources).
            assert!(c.witnesses.entries() == w.cells[k].witnesses.entries());
            // Its lines too (what its distinct counts are held to).
            assert_eq!(c.lines, w.cells[k].lines);
            let _ = c.summary(scanwatch_event::Protocol::Tcp, 1, 10);
        }
        // Merged, as the centre merges parts: every sketch's registers are summed
        // into its estimator (a forged register once overflowed there).
        let mut merged = w.clone();
        merged.merge(&again, 64);
        for c in merged.cells.values() {
            let _ = c.summary(scanwatch_event::Protocol::Tcp, 1, 10);
        }
    }
}

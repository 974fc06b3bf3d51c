//! Fuzz the partial-window decoder of the scale-out mode: any bytes must decode to a
//! window or a reason, never panic, and a decoded window must encode and decode again
//! to the same window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_aggregate::codec::decode_body;
use scanwatch_aggregate::{decode_window, encode_window};

fuzz_target!(|data: &[u8]| {
    // The checksummed form first (almost always refused), then the body without it,
    // which is where the structure is.
    let _ = decode_window(data);
    if let Ok(w) = decode_body(data) {
        let again = decode_window(&encode_window(&w)).expect("own bytes decode");
        assert_eq!(again.cells.len(), w.cells.len());
        assert_eq!(again.totals.all_events, w.totals.all_events);
        for c in again.cells.values() {
            let _ = c.summary(scanwatch_event::Protocol::Tcp, 1, 10);
        }
    }
});

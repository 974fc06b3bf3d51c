//! Fuzz the decoder of the embedded store's event blocks: any bytes decode to
//! events or a reason, never panic, and decoded events encode and decode again to
//! the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_event::block::{decode_events, encode_events};

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = decode_events(data) {
        let again = decode_events(&encode_events(&events)).expect("own bytes decode");
        assert_eq!(again, events);
    }
});

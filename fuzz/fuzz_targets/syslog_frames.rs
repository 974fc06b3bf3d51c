//! Fuzz the sensor's syslog-over-TCP framing (RFC 6587: octet counting or a message
//! per line): any bytes read as a stream give messages no longer than the limit,
//! then an end or a refusal, never a panic, and never more bytes than were sent.
//! The framing file is compiled here on its own (std only), so the fuzz build does
//! not need the sensor's libpcap.
#![no_main]

#[path = "../../crates/sensor/src/framing.rs"]
#[allow(dead_code)]
mod framing;

use framing::{next_frame, Frame, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = std::io::Cursor::new(data);
    let mut taken = 0usize;
    // Every message consumes at least one byte, so this ends.
    for _ in 0..=data.len() {
        match next_frame(&mut r, &|| false) {
            Frame::Message(m) => {
                assert!(m.len() <= MAX_MESSAGE);
                taken += m.len();
                assert!(taken <= data.len());
            }
            Frame::End | Frame::Bad => return,
        }
    }
    panic!("more frames than bytes");
});

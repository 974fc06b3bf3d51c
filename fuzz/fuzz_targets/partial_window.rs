//! Fuzz the partial-window decoder of the scale-out mode, without a witness sample
//! seed (as `analyze` runs): `partial_window_check.rs` says what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "partial_window_check.rs"]
mod partial_window_check;

fuzz_target!(|data: &[u8]| {
    partial_window_check::check(data);
});

//! Fuzz the partial-window decoder under a sample seed (as the centre
//! runs): samples written under this process's ranking and under any other are
//! read; `partial_window_check.rs` says what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "partial_window_check.rs"]
mod partial_window_check;

fuzz_target!(|data: &[u8]| {
    scanwatch_aggregate::sample_seed::set_sample_seed(0x5eed_f022).expect("one seed");
    partial_window_check::check(data);
});

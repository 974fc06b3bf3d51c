//! Fuzz the journald source's reading of one `journalctl --output=json` record:
//! any bytes give a line and a position or nothing, never a panic; a line is one
//! line (the message's own line breaks are taken out). The file is compiled here on
//! its own (std, serde_json and chrono), so the fuzz build does not need the
//! sensor's libpcap.
#![no_main]

#[path = "../../crates/sensor/src/journal_entry.rs"]
mod journal_entry;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some((line, _)) = journal_entry::entry_line(&text) {
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    }
    let _ = journal_entry::cursor_position(&text);
});

//! Fuzz the advisory importers (NVD CVE JSON 2.0, CISA KEV JSON and CSV, Exploit-DB
//! CSV, CSAF 2.0): the first byte picks the parser; any input gives entries and errors or a
//! file error, never a panic, and every advisory maps to ports without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_context::advisory;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let parsed = match which % 5 {
        0 => advisory::parse_nvd_json(rest),
        1 => advisory::parse_kev_json(rest),
        2 => advisory::parse_kev_csv(rest),
        3 => advisory::parse_exploitdb_csv(rest),
        _ => advisory::parse_csaf_json(rest),
    };
    if let Ok(p) = parsed {
        for a in &p.advisories {
            let _ = advisory::mapping::port_matches(a);
        }
        for e in &p.errors {
            let _ = e.to_string();
        }
    }
});

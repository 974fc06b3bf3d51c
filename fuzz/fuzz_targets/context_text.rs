//! Fuzz the small text readers of the context stage: IDS alert lines (EVE and
//! fast.log), benign-scanner lists, the services database and the ports.toml
//! overrides. None may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_context::{benign, ids, knowledge, services};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => {
            for line in text.lines() {
                let _ = ids::parse_line(line, 2026);
            }
        }
        1 => {
            let (nets, _) = benign::parse_list(&text, "fuzz");
            let set = benign::BenignSet::new(&nets);
            for n in &nets {
                assert!(set.contains(n.net.network()), "{n:?}");
            }
        }
        2 => {
            let _ = services::parse_services(&text);
        }
        _ => {
            if let Ok(o) = knowledge::parse_overrides(&text) {
                let k = knowledge::PortKnowledge::builtin().with_overrides(&o);
                let _ = k.info(scanwatch_event::Protocol::Tcp, 1025);
            }
        }
    }
});

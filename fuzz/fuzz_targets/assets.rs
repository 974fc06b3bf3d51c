//! Fuzz the asset inventory readers (CSV and nmap XML): any input gives assets and
//! per-entry errors or a file error, never a panic; ranking what was read never
//! panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_context::{assets, exposure};
use scanwatch_event::Protocol;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let parsed = if which % 2 == 0 {
        assets::parse_csv(rest, "fuzz")
    } else {
        assets::parse_nmap_xml(rest, "fuzz")
    };
    if let Ok(p) = parsed {
        let targets = [
            exposure::Target::port(Protocol::Tcp, 1025).with_services(["dns", "msrpc"]),
            exposure::Target::range(Protocol::Tcp, 1025, 65535),
        ];
        let _ = exposure::rank(&p.assets, &targets);
        let _ = assets::merge(p.assets.clone(), p.assets);
    }
});

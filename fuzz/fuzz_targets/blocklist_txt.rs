//! Fuzz the blocklist's txt reader and the nftables script built from it (what
//! `scanwatch block` loads on a firewall): any text gives addresses and bad lines,
//! never a panic; every address read is in the script, each line of the input is
//! either an address, a comment, blank or reported; a table name that is not
//! plain letters, digits and `_` is refused. The file is compiled here on its own
//! (std only).
#![no_main]

#[path = "../../crates/collector/src/blocklist.rs"]
#[allow(dead_code)]
mod blocklist;

use blocklist::{nft_script, parse_blocklist_txt, valid_nft_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (ips, bad) = parse_blocklist_txt(&text);
    assert!(ips.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    let content = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
        .count();
    assert!(ips.len() + bad.len() <= content);
    let script = nft_script(&ips, 3600, "scanwatch_blocklist", &text);
    for ip in &ips {
        assert!(script.contains(&format!("{ip} timeout 1h")), "{ip}");
    }
    // The comment (any text) stays one line: the script has 19 lines, plus one
    // element line per non-empty family.
    let v4 = ips.iter().any(|ip| ip.is_ipv4());
    let v6 = ips.iter().any(|ip| ip.is_ipv6());
    assert_eq!(
        script.lines().count(),
        19 + usize::from(v4) + usize::from(v6),
        "{script}"
    );
    let name = text.lines().next().unwrap_or("");
    if valid_nft_table(name) {
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
});

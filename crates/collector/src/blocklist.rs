//! The blocklist's text forms, std only (the fuzz target compiles this file on
//! its own): reading the `txt` list (one address per line) and writing the
//! nftables script that loads it (`GET /api/v1/blocklist?format=nft`, and
//! `scanwatch block` on a firewall).

/// The table the blocklist's nftables file loads into by default.
pub const DEFAULT_NFT_TABLE: &str = "scanwatch_blocklist";

/// Whether `name` can be an nftables table name here: 1-32 letters, digits or
/// `_`, starting with a letter (nothing else reaches the script).
pub fn valid_nft_table(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An nftables script that replaces table `table` (inet) with two sets of the
/// addresses, each element expiring `timeout_s` seconds after loading, and an
/// input chain dropping their traffic. Loading it again replaces everything, so
/// an address the list no longer has is let in at the next load, and one the
/// list keeps gets a fresh timeout. `table` must pass [`valid_nft_table`].
pub fn nft_script(ips: &[std::net::IpAddr], timeout_s: i64, table: &str, comment: &str) -> String {
    // nftables' own units: `24h`, `5m`, `4s`.
    let t = match timeout_s.max(1) {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    let set = |name: &str, ty: &str, v4: bool| {
        let elems: Vec<String> = ips
            .iter()
            .filter(|ip| ip.is_ipv4() == v4)
            .map(|ip| format!("{ip} timeout {t}"))
            .collect();
        let elements = if elems.is_empty() {
            String::new()
        } else {
            format!("\t\telements = {{ {} }}\n", elems.join(", "))
        };
        format!("\tset {name} {{\n\t\ttype {ty}\n\t\tflags timeout\n{elements}\t}}\n")
    };
    let comment = comment.replace(['\n', '\r'], " ");
    format!(
        "#!/usr/sbin/nft -f\n# scanwatch blocklist: {comment}\ntable inet {table}\ndelete table inet {table}\ntable inet {table} {{\n{}{}\tchain input {{\n\t\ttype filter hook input priority -10; policy accept;\n\t\tip saddr @sources_v4 drop\n\t\tip6 saddr @sources_v6 drop\n\t}}\n}}\n",
        set("sources_v4", "ipv4_addr", true),
        set("sources_v6", "ipv6_addr", false)
    )
}

/// Reads a blocklist in the `txt` form (one address per line; `#` comments and
/// blank lines skipped): the addresses, sorted and unique, and the lines that are
/// not an address (line number, text), so a bad line is reported and the rest kept.
pub fn parse_blocklist_txt(text: &str) -> (Vec<std::net::IpAddr>, Vec<(usize, String)>) {
    let mut ips = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.parse::<std::net::IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => bad.push((i + 1, l.chars().take(80).collect())),
        }
    }
    ips.sort();
    ips.dedup();
    (ips, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txt_blocklist_is_read_and_bad_lines_are_reported() {
        let (ips, bad) = parse_blocklist_txt(
            "# scanwatch blocklist\n192.0.2.9\n\n2001:db8::7\n192.0.2.9\nnot-an-ip\n 192.0.2.1 \n300.1.1.1\n",
        );
        let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["192.0.2.1", "192.0.2.9", "2001:db8::7"]);
        assert_eq!(
            bad,
            vec![(6, "not-an-ip".to_string()), (8, "300.1.1.1".to_string())]
        );
    }

    #[test]
    fn the_nft_script_takes_seconds_and_checks_its_table() {
        let ips = ["198.18.4.2".parse().unwrap()];
        let s = nft_script(&ips, 4, "sw_test", "x\ny");
        assert!(s.contains("table inet sw_test {"), "{s}");
        assert!(s.contains("elements = { 198.18.4.2 timeout 4s }"), "{s}");
        assert!(
            s.contains("# scanwatch blocklist: x y\n"),
            "one comment line: {s}"
        );
        assert!(nft_script(&ips, 300, "t", "").contains("timeout 5m"));
        assert!(valid_nft_table("scanwatch_blocklist"));
        for bad in ["", "1abc", "a b", "a;flush ruleset", &"a".repeat(33)] {
            assert!(!valid_nft_table(bad), "{bad:?}");
        }
    }
}

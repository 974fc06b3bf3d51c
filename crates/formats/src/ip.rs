//! Reading an address from log text: the parsers' hottest step after finding the
//! fields (std's `IpAddr` parser was an eighth of the netfilter parser's profile).
//!
//! Hand-written: a canonical dotted quad (four decimal octets of 0–255, no leading
//! zeros) is read directly; anything else goes to std's parser, which decides. So
//! the result equals `s.parse::<IpAddr>().ok()` for every input (the fast path
//! accepts only text std reads to the same address; tested exhaustively on short
//! inputs below and fuzzed in `fuzz_targets/netfilter.rs`).

use std::net::{IpAddr, Ipv4Addr};

/// `s` as an address, exactly as `s.parse::<IpAddr>().ok()`.
#[inline]
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    match dotted_quad(s.as_bytes()) {
        Some(a) => Some(IpAddr::V4(a)),
        None => s.parse().ok(),
    }
}

/// A canonical dotted quad, or `None` (not one: std decides).
#[inline]
fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *octet = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(s: &str) {
        assert_eq!(parse_ip(s), s.parse::<IpAddr>().ok(), "{s:?}");
    }

    #[test]
    fn equals_std_on_chosen_cases() {
        for s in [
            "",
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.04",
            "1.2.3.0004",
            "1000.1.1.1",
            "198.51.100.7",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "1.2.3.4/24",
            "+1.2.3.4",
            "1.2.3.-4",
            "1.2.3.4a",
            "１.2.3.4",
            "10.0.0.255",
            "100.100.100.100",
        ] {
            same(s);
        }
    }

    /// Every string of up to seven characters from digits and dots (and a few
    /// longer shapes): the fast path never disagrees with std.
    #[test]
    fn equals_std_on_every_short_string_of_digits_and_dots() {
        let alphabet = ['0', '1', '2', '5', '9', '.'];
        let mut s = String::new();
        fn walk(s: &mut String, alphabet: &[char], left: usize) {
            same(s);
            if left == 0 {
                return;
            }
            for c in alphabet {
                s.push(*c);
                walk(s, alphabet, left - 1);
                s.pop();
            }
        }
        walk(&mut s, &alphabet, 7);
        for a in [0u32, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 999] {
            for b in ["0", "00", "255", "256", "010"] {
                same(&format!("{a}.{b}.{a}.{b}"));
                same(&format!("{b}.{a}.{b}.{a}"));
            }
        }
    }
}

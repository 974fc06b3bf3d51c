//! Fuzz the decoder of a source's ports of a day (the embedded store's packed
//! source days, `scanwatch_aggregate::source_day`): any bytes decode to ports or a
//! reason, never panic; decoded ports are in order and within the day;
//! they encode to bytes that decode again to the same ports, and from then on to
//! the same counts (a first encoding may turn an HLL4 sketch into HLL8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_aggregate::source_day::{decode_day_ports, encode_day_ports, PortActivity, DAY_MS};

type Summary = Vec<((u8, u16), u64, i64, i64, u64, u64)>;

fn summary(p: &[((u8, u16), PortActivity)]) -> Summary {
    p.iter()
        .map(|(k, a)| {
            let (s, t) = (a.sensors.distinct(), a.targets.distinct());
            (*k, a.events, a.first, a.last, s, t)
        })
        .collect()
}

fn encode(day: i64, p: &[((u8, u16), PortActivity)]) -> Vec<u8> {
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    encode_day_ports(day, p, &mut out, &mut buf);
    out
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the day (any of 65,536 from 1970 on).
    let [a, b, rest @ ..] = data else {
        return;
    };
    let day = i64::from(u16::from_le_bytes([*a, *b])) * DAY_MS;
    let Ok(ports) = decode_day_ports(day, rest) else {
        return;
    };
    for w in ports.windows(2) {
        assert!(w[0].0 < w[1].0, "ports in order");
    }
    for (_, p) in &ports {
        assert!(day <= p.first && p.first <= p.last && p.last < day + DAY_MS);
    }
    let again = decode_day_ports(day, &encode(day, &ports)).expect("own bytes decode");
    let (s0, s1) = (summary(&ports), summary(&again));
    let fixed = |s: &Summary| -> Vec<((u8, u16), u64, i64, i64)> {
        s.iter().map(|x| (x.0, x.1, x.2, x.3)).collect()
    };
    assert_eq!(fixed(&s0), fixed(&s1));
    let third = decode_day_ports(day, &encode(day, &again)).expect("own bytes decode");
    assert_eq!(summary(&third), s1);
});

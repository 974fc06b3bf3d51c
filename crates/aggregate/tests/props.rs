//! Property tests: merging partial aggregates equals aggregating the union, the
//! distinct-count error bound holds at 1 M keys, and windows close on event time.
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use scanwatch_aggregate::{
    decode_window, encode_window, AggregateConfig, Aggregator, Cell, Counted, Window,
};
use scanwatch_event::{Event, Protocol, TcpFlags, Timestamp};

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn syn(t: i64, src: u32, dst: u32, port: u16, count: u32) -> Event {
    Event {
        src_port: Some(40000),
        ..Event::syn_probe(Timestamp(t), ip(src), ip(dst), port, count)
    }
}

fn cell_of(events: &[(u64, u32, u32, u32)], limit: usize) -> Cell {
    let mut c = Cell::default();
    for &(sensor, src, dst, count) in events {
        let e = syn(0, src, dst, 1025, count);
        c.add(sensor, &e, scanwatch_aggregate::ip_hash(e.src), limit);
    }
    c
}

fn rel_err(est: u64, truth: u64) -> f64 {
    (est as f64 - truth as f64).abs() / truth.max(1) as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Small cells: merge is exactly the union, whatever the split.
    #[test]
    fn merge_equals_union_exact(events in prop::collection::vec((0u64..8, 0u32..40, 0u32..20, 1u32..5), 0..200), split in 0usize..200) {
        let split = split.min(events.len());
        let limit = 64;
        let whole = cell_of(&events, limit);
        let mut a = cell_of(&events[..split], limit);
        let b = cell_of(&events[split..], limit);
        a.merge(&b, limit);
        let (x, y) = (a.summary(Protocol::Tcp, 1025, 10), whole.summary(Protocol::Tcp, 1025, 10));
        prop_assert_eq!(x, y);
    }

    /// Large cells (sketches on both sides or on one): the merged distinct counts equal
    /// the one-pass counts (HLL registers are a max, so the union is order-free), and
    /// both stay within 3 % of the truth; event totals are exact. (At these
    /// cardinalities the estimate's standard error is about 0.6 %: 3 % is five of
    /// them, so a random input fails by chance about once in a million cases; the
    /// 2 % bound used before failed about once in thirty runs of 64 cases.)
    #[test]
    fn merge_equals_union_sketch(n in 500u32..5000, split_frac in 0.0f64..1.0, offset in 0u32..1_000_000) {
        let events: Vec<(u64, u32, u32, u32)> = (0..n).map(|i| (u64::from(i % 7), offset + i, i % 3, 1 + i % 3)).collect();
        let split = ((n as f64) * split_frac) as usize;
        let limit = 64;
        let whole = cell_of(&events, limit);
        let mut a = cell_of(&events[..split], limit);
        let b = cell_of(&events[split..], limit);
        a.merge(&b, limit);
        prop_assert_eq!(a.events, whole.events);
        prop_assert_eq!(a.sources.distinct(), whole.sources.distinct());
        prop_assert!(rel_err(whole.sources.distinct(), u64::from(n)) <= 0.03);
        prop_assert_eq!(a.sensors.distinct(), 7);
        prop_assert_eq!(a.targets.distinct(), 3);
    }

    /// The scale-out path: a window split in parts, each part written to bytes and
    /// read back, merged into an aggregator, closes to the very window the one-pass
    /// aggregator closes (exact cells and sketch cells alike).
    #[test]
    fn decoded_parts_merge_to_the_one_pass_window(
        small in prop::collection::vec((0u64..8, 0u32..40, 0u32..20, 1u32..5, 0u16..4), 0..150),
        big in 0u32..3000,
        parts in 1usize..5,
    ) {
        let w = 3_600_000;
        let mut events: Vec<(u64, Event)> = small.iter().enumerate()
            .map(|(i, &(s, src, dst, c, port))| (s, syn(i as i64 * 1000, src, dst, 1020 + port, c)))
            .collect();
        events.extend((0..big).map(|i| (u64::from(i % 5), syn(i64::from(i) * 7, 500_000 + i, i % 9, 445, 1))));
        let cfg = AggregateConfig::new(w);
        let mut one = Aggregator::new(cfg, 10);
        for (s, e) in &events {
            one.add(*s, e);
        }
        let mut merged = Aggregator::new(cfg, 10);
        for k in 0..parts {
            let mut part = Window::default();
            let mut max_time = i64::MIN;
            for (s, e) in events.iter().skip(k).step_by(parts) {
                let mut a = Aggregator::new(cfg, 10);
                a.add(*s, e);
                part.merge(&a.open_windows()[&0], 64);
                max_time = max_time.max(e.time.0);
            }
            let back = decode_window(&encode_window(&part)).unwrap();
            merged.merge_window(0, &back, max_time);
        }
        // Everything equal, except which sources the frequent-items sketch of a large
        // cell names: that depends on the order it saw them, within its error bound.
        let (mut got, mut want) = (merged.finish(), one.finish());
        let mut truth: std::collections::HashMap<(u16, IpAddr), u64> = Default::default();
        for (_, e) in &events {
            *truth.entry((e.dst_port.unwrap_or(0), e.src)).or_default() += u64::from(e.count);
        }
        for w in got.iter_mut().chain(want.iter_mut()) {
            for c in w.cells.iter_mut().filter(|c| !c.exact) {
                let bound = (c.events as f64 * 3.5 / 256.0).ceil() as u64;
                for (ip, est) in &c.top_sources {
                    let t = truth.get(&(c.port, *ip)).copied().unwrap_or(0);
                    prop_assert!(est.abs_diff(t) <= bound, "{ip}: {est} vs {t} (bound {bound})");
                }
                c.top_sources.clear();
                for x in &c.sightings {
                    let t = truth.get(&(c.port, x.ip)).copied().unwrap_or(0);
                    prop_assert!(x.events.abs_diff(t) <= bound, "{}: {} vs {t} (bound {bound})", x.ip, x.events);
                }
                c.sightings.clear();
            }
        }
        prop_assert_eq!(got, want);
    }
}

/// A cell's lines go through the bytes (version 7); a part written before them
/// (version 6) reads with its events standing in for its lines.
#[test]
fn a_cells_lines_go_through_the_bytes_and_older_parts_read_their_events() {
    let mut a = Aggregator::new(AggregateConfig::new(60_000), 10);
    a.add(1, &syn(5, 1, 2, 1025, 3));
    a.add(1, &syn(6, 7, 2, 1025, 40));
    let w = a.open_windows()[&0].clone();
    let cell = |w: &scanwatch_aggregate::Window| {
        let c = w.cells.values().next().unwrap();
        (c.events, c.lines)
    };
    assert_eq!(cell(&w), (43, 2));
    let back = decode_window(&encode_window(&w)).unwrap();
    assert_eq!(cell(&back), (43, 2));
    // The byte of the lines: where the bytes of one line more differ.
    let mut more = w.clone();
    more.cells.values_mut().next().unwrap().lines = 3;
    let (one, other) = (encode_window(&w), encode_window(&more));
    let at: Vec<usize> = (0..one.len() - 8).filter(|&i| one[i] != other[i]).collect();
    assert_eq!(at.len(), 1, "{at:?}");
    let mut v6 = one[..one.len() - 8].to_vec();
    v6.remove(at[0]);
    v6[0] = 6;
    let old = scanwatch_aggregate::codec::decode_body(&v6).unwrap();
    assert_eq!(cell(&old), (43, 43));
}

/// Damaged or foreign bytes are refused with a reason, never merged.
#[test]
fn damaged_partials_are_refused() {
    let mut a = Aggregator::new(AggregateConfig::new(60_000), 10);
    a.add(1, &syn(5, 1, 2, 1025, 3));
    let good = encode_window(&a.open_windows()[&0]);
    assert!(decode_window(&good).is_ok());
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    assert_eq!(
        decode_window(&flipped).unwrap_err().to_string(),
        "partial window cannot be read: checksum mismatch"
    );
    assert!(decode_window(&good[..good.len() - 1]).is_err());
    assert!(decode_window(&[]).is_err());
    let mut body = good[..good.len() - 8].to_vec();
    body[0] = 9;
    assert!(scanwatch_aggregate::codec::decode_body(&body)
        .unwrap_err()
        .to_string()
        .contains("format version 9"));
}

/// The error bound the issue asks for: ≤ 2 % at 1 M distinct sources, for several
/// disjoint key sets, and also after merging four partial sketches.
#[test]
fn distinct_error_at_one_million() {
    for base in [0u32, 10_000_000, 0x0A00_0000, 0xC000_0000] {
        let mut whole: Counted<IpAddr> = Counted::default();
        let mut parts: Vec<Counted<IpAddr>> = vec![Counted::default(); 4];
        for i in 0..1_000_000u32 {
            whole.add(ip(base.wrapping_add(i)), 1, 64);
            parts[(i % 4) as usize].add(ip(base.wrapping_add(i)), 1, 64);
        }
        let est = whole.distinct();
        assert!(
            rel_err(est, 1_000_000) <= 0.02,
            "base {base}: estimate {est}"
        );
        let mut merged = parts[0].clone();
        for p in &parts[1..] {
            merged.merge(p, 64);
        }
        assert_eq!(
            merged.distinct(),
            est,
            "merge must equal the one-pass sketch"
        );
    }
}

#[test]
fn top_sources_exact_when_small() {
    let c = cell_of(
        &[(1, 10, 1, 5), (2, 11, 1, 1), (1, 10, 2, 2), (3, 12, 1, 7)],
        64,
    );
    let s = c.summary(Protocol::Tcp, 1025, 2);
    assert_eq!(s.top_sources, vec![(ip(10), 7), (ip(12), 7)]);
    assert_eq!((s.events, s.sources, s.sensors, s.targets), (15, 3, 3, 2));
    assert!(s.exact);
}

#[test]
fn windows_close_on_event_time_and_late_events_are_counted() {
    let w = 600_000; // 10 minutes
    let mut cfg = AggregateConfig::new(w);
    cfg.lateness_ms = 60_000;
    let mut agg = Aggregator::new(cfg, 10);
    assert!(agg.add(1, &syn(10_000, 1, 1, 22, 1)));
    // Out of order inside the lateness: still accepted into window 0.
    assert!(agg.add(1, &syn(650_000, 2, 1, 22, 1)));
    assert!(agg.add(1, &syn(500_000, 3, 1, 22, 1)));
    assert!(
        agg.drain_closed().is_empty(),
        "window 0 closes only at 600s + 60s lateness"
    );
    assert!(agg.add(2, &syn(660_000, 4, 1, 23, 1)));
    let closed = agg.drain_closed();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].start, Timestamp(0));
    assert_eq!(closed[0].cells[0].sources, 2);
    assert_eq!(closed[0].active_sensors, 1);
    // Now an event for window 0 is late: counted, gathered in a late window of its
    // own (not merged into the closed one), never lost silently.
    assert!(!agg.add(1, &syn(1_000, 9, 1, 22, 3)));
    assert_eq!(agg.late_events(), 3);
    assert!(
        agg.drain_closed().is_empty(),
        "a late window waits one more lateness of watermark"
    );
    assert!(agg.add(2, &syn(725_000, 5, 1, 23, 1)));
    let late = agg.drain_closed();
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].late);
    assert_eq!(late[0].start, Timestamp(0));
    assert_eq!(late[0].cells[0].events, 3);
    assert_eq!(late[0].cells[0].sources, 1);
    let rest = agg.finish();
    assert_eq!(rest.len(), 1);
    assert!(!rest[0].late);
    assert_eq!(rest[0].start, Timestamp(600_000));
    assert_eq!(rest[0].cells.len(), 2);
}

#[test]
fn replies_are_not_cells_but_count_in_totals() {
    let mut agg = Aggregator::new(AggregateConfig::new(60_000), 10);
    let mut reply = syn(0, 1, 2, 80, 1);
    reply.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    agg.add(1, &reply);
    let w = agg.finish();
    assert!(w[0].cells.is_empty());
    assert_eq!(w[0].all_events, 1);
    assert_eq!(w[0].port_events, 0);
}

/// The same bound and merge property for the count-free [`Distinct`] (targets).
#[test]
fn distinct_only_error_and_merge_at_one_million() {
    use scanwatch_aggregate::{ip_hash, Distinct};
    let mut whole = Distinct::default();
    let mut parts = vec![Distinct::default(); 3];
    for i in 0..1_000_000u32 {
        let h = ip_hash(ip(0x0B00_0000 + i));
        whole.add_hash(h, 64);
        parts[(i % 3) as usize].add_hash(h, 64);
    }
    assert!(
        rel_err(whole.distinct(), 1_000_000) <= 0.02,
        "{}",
        whole.distinct()
    );
    let mut merged = Distinct::default();
    for p in &parts {
        merged.merge(p, 64);
    }
    assert_eq!(merged.distinct(), whole.distinct());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn distinct_merge_equals_union(keys in prop::collection::vec(0u32..5000, 0..400), split in 0usize..400) {
        use scanwatch_aggregate::{ip_hash, Distinct};
        let split = split.min(keys.len());
        let build = |ks: &[u32]| {
            let mut d = Distinct::default();
            for k in ks {
                d.add_hash(ip_hash(ip(*k)), 64);
            }
            d
        };
        let whole = build(&keys);
        let mut a = build(&keys[..split]);
        a.merge(&build(&keys[split..]), 64);
        prop_assert_eq!(a.distinct(), whole.distinct());
        let truth = keys.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        if whole.is_exact() {
            prop_assert_eq!(whole.distinct(), truth);
        } else {
            // Five standard errors, as above.
            prop_assert!(rel_err(whole.distinct(), truth) <= 0.03);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Sweeps do not depend on delivery: the events of a window cut into parts,
    /// each part through the codec, merged in any order, give the sweeps and the
    /// cells (sweepers set aside) of the one-pass window. Includes a source past
    /// the spread cap, so the bottom-k rule is exercised across parts.
    #[test]
    fn sweeps_are_the_same_whatever_the_delivery(
        probes in prop::collection::vec((0u64..6, 0u32..12, 0u16..40, 1u32..3), 0..400),
        vertical in any::<bool>(),
        parts in 1usize..6,
        order in any::<u64>(),
    ) {
        let w = 3_600_000;
        let mut events: Vec<(u64, Event)> = probes.iter().enumerate()
            // Sources 0..12 of one /24 (so they form one campaign), ports 1..40.
            .map(|(i, &(s, src, port, c))| (s, syn(i as i64 * 100, 0xcb00_7100 + src, 7, 1 + port, c)))
            .collect();
        if vertical {
            events.extend((0..(scanwatch_aggregate::SPREAD_CAP as u32 + 300)).map(|p| {
                (u64::from(p % 3), syn(i64::from(p) * 10, 0x0a00_0001, 7, (p * 13 % 65_000 + 1) as u16, 1))
            }));
        }
        let mut cfg = AggregateConfig::new(w);
        cfg.sweep = scanwatch_aggregate::SweepRule { min_ports: 6, trim: 1 };
        let mut one = Aggregator::new(cfg, 10);
        for (s, e) in &events {
            one.add(*s, e);
        }
        let mut chunks: Vec<Window> = Vec::new();
        for k in 0..parts {
            let mut a = Aggregator::new(cfg, 10);
            for (s, e) in events.iter().skip(k).step_by(parts) {
                a.add(*s, e);
            }
            // A part with no events is never published (nothing to merge): with
            // fewer events than parts, or none, some parts have no window.
            if let Some(part) = a.open_windows().get(&0) {
                chunks.push(decode_window(&encode_window(part)).unwrap());
            }
        }
        // A delivery order from the seed.
        let mut idx: Vec<usize> = (0..chunks.len()).collect();
        let mut x = order | 1;
        for i in (1..idx.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            idx.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut merged = Aggregator::new(cfg, 10);
        let max_time = events.iter().map(|(_, e)| e.time.0).max().unwrap_or(0);
        for i in idx {
            merged.merge_window(0, &chunks[i], max_time);
        }
        let (mut got, mut want) = (merged.finish(), one.finish());
        // Which sources a sketched cell's frequent-items sketch names depends on
        // order (within its bound, checked elsewhere): not compared here.
        for w in got.iter_mut().chain(want.iter_mut()) {
            for c in w.cells.iter_mut().filter(|c| !c.exact) {
                c.top_sources.clear();
                c.sightings.clear();
            }
        }
        prop_assert_eq!(&got, &want);
        if vertical {
            let v = &want[0].sweeps.iter().find(|s| s.prefix_len == 24 && s.prefix == ip(0x0a00_0000)).unwrap();
            prop_assert!(v.capped);
            prop_assert_eq!(v.ports, scanwatch_aggregate::SPREAD_CAP as u64);
        }
    }
}

/// A sweeper is set aside from every cell it reached: its sources and events are
/// out of the counts and the names, and reported as swept.
#[test]
fn sweepers_are_set_aside_from_the_cells() {
    let mut cfg = AggregateConfig::new(3_600_000);
    cfg.sweep = scanwatch_aggregate::SweepRule {
        min_ports: 10,
        trim: 1,
    };
    let mut a = Aggregator::new(cfg, 10);
    // A sweeper probing ports 1..=20, each on two sensors.
    for p in 1..=20u16 {
        a.add(1, &syn(1000, 99, 7, p, 1));
        a.add(2, &syn(1000, 99, 8, p, 1));
    }
    // Five ordinary sources on port 5.
    for s in 0..5 {
        a.add(3, &syn(2000, 200 + s, 7, 5, 2));
    }
    // One sensor claims the ordinary source 200 probed 50 more ports: it is not
    // made a sweeper by one sensor.
    for p in 100..150u16 {
        a.add(4, &syn(3000, 200, 7, p, 1));
    }
    let w = a.finish().remove(0);
    assert_eq!(w.sweeps.len(), 1);
    assert_eq!(w.sweeps[0].sources, 1);
    assert_eq!(w.sweeps[0].top_sources[0].ip, ip(99));
    assert_eq!(w.sweeps[0].ports, 20);
    let c5 = w.cells.iter().find(|c| c.port == 5).unwrap();
    assert_eq!((c5.sources, c5.events), (5, 10));
    assert_eq!((c5.swept_sources, c5.swept_events), (1, 2));
    assert!(c5.top_sources.iter().all(|(s, _)| *s != ip(99)));
    let c1 = w.cells.iter().find(|c| c.port == 1).unwrap();
    assert_eq!((c1.sources, c1.events, c1.swept_sources), (0, 0, 1));
    // With the rule off nothing is set aside.
    cfg.sweep = scanwatch_aggregate::SweepRule::off();
    let mut b = Aggregator::new(cfg, 10);
    for p in 1..=20u16 {
        b.add(1, &syn(1000, 99, 7, p, 1));
    }
    let w = b.finish().remove(0);
    assert!(w.sweeps.is_empty());
    assert!(w
        .cells
        .iter()
        .all(|c| c.sources == 1 && c.swept_sources == 0));
}

proptest! {
    /// One distinct counter's bytes (the store's cells): the same count after a round
    /// trip, exact or sketched, and the same bytes for the same keys in any order.
    #[test]
    fn a_distinct_counter_round_trips(
        keys in prop::collection::vec(prop_oneof![0u64..1000, any::<u64>()], 0..1500),
        limit in prop_oneof![Just(8usize), Just(64), Just(1024)],
    ) {
        use scanwatch_aggregate::{decode_distinct, encode_distinct, Distinct};
        let mut d = Distinct::default();
        for k in &keys {
            d.add_hash(*k, limit);
        }
        let bytes = encode_distinct(&d);
        let back = decode_distinct(&bytes).unwrap();
        prop_assert_eq!(back.distinct(), d.distinct());
        prop_assert_eq!(back.is_exact(), d.is_exact());
        if d.is_exact() {
            let mut r = Distinct::default();
            for k in keys.iter().rev() {
                r.add_hash(*k, limit);
            }
            prop_assert_eq!(encode_distinct(&r), bytes);
        }
    }
}

proptest! {
    /// Merging many counters at once gives what merging them pairwise gives.
    #[test]
    fn a_union_of_counters_equals_pairwise_merges(
        parts in prop::collection::vec(prop::collection::vec(0u64..3000, 0..400), 1..12),
        limit in prop_oneof![Just(8usize), Just(64), Just(1024)],
    ) {
        use scanwatch_aggregate::{Distinct, DistinctUnion};
        let counters: Vec<Distinct> = parts
            .iter()
            .map(|keys| {
                let mut d = Distinct::default();
                keys.iter().for_each(|k| d.add_hash(*k, limit));
                d
            })
            .collect();
        let mut pairwise = Distinct::default();
        let mut union = DistinctUnion::new(limit);
        for c in &counters {
            pairwise.merge(c, limit);
            union.add(c);
        }
        let union = union.finish();
        let exact: std::collections::HashSet<u64> = parts.iter().flatten().copied().collect();
        prop_assert_eq!(union.is_exact(), pairwise.is_exact());
        if union.is_exact() {
            prop_assert_eq!(union.distinct(), exact.len() as u64);
        }
        let (a, b) = (union.distinct() as f64, pairwise.distinct() as f64);
        prop_assert!((a - b).abs() <= 0.01 * b.max(1.0), "{} vs {}", a, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Adding counters by their bytes (HLL8 arrays merged register by register)
    /// counts what adding them decoded counts, exactly: the same registers, the
    /// same estimator.
    #[test]
    fn a_union_of_encoded_counters_equals_the_union_of_decoded_ones(
        parts in prop::collection::vec((0u64..1_000_000, 0usize..30_000), 1..8),
        limit in prop_oneof![Just(64usize), Just(1024)],
    ) {
        use scanwatch_aggregate::{decode_distinct, encode_distinct, key_hash, Distinct, DistinctUnion};
        let encoded: Vec<Vec<u8>> = parts
            .iter()
            .map(|(first, n)| {
                let mut d = Distinct::default();
                (*first..*first + *n as u64)
                    .for_each(|k| d.add_hash(key_hash(&k.to_le_bytes()), limit));
                encode_distinct(&d)
            })
            .collect();
        let (mut by_bytes, mut decoded) = (DistinctUnion::new(limit), DistinctUnion::new(limit));
        for e in &encoded {
            by_bytes.add_encoded(e).unwrap();
            decoded.add(&decode_distinct(e).unwrap());
        }
        let (a, b) = (by_bytes.finish(), decoded.finish());
        prop_assert_eq!(a.is_exact(), b.is_exact());
        prop_assert_eq!(a.distinct(), b.distinct());
    }
}

/// A union of counters by their bytes refuses an HLL8 array with a register out
/// of range or another header, with a reason and no panic; so does the decoder.
#[test]
fn a_union_refuses_a_forged_array() {
    use scanwatch_aggregate::{encode_distinct, key_hash, Distinct, DistinctUnion};
    let mut d = Distinct::default();
    (0u64..50_000).for_each(|k| d.add_hash(key_hash(&k.to_le_bytes()), 64));
    let good = encode_distinct(&d);
    assert_eq!(good.len(), 1 + 40 + (1 << 14), "an HLL8 array image");
    let mut high = good.clone();
    *high.last_mut().unwrap() = 200;
    let mut other = good.clone();
    other[1 + 2] ^= 1; // the family byte
                       // A zero count of all registers: the sketch crate's union would skip it.
    let mut empty = good.clone();
    empty[1 + 32..1 + 36].copy_from_slice(&(1u32 << 14).to_le_bytes());
    for (bad, what) in [
        (&high, "register"),
        (&other, "distinct sketch"),
        (&empty, "inconsistent"),
    ] {
        for first in [true, false] {
            let mut u = DistinctUnion::new(64);
            if !first {
                u.add_encoded(&good).unwrap();
            }
            let e = u.add_encoded(bad).expect_err("refused");
            assert!(e.to_string().contains(what), "{e}");
        }
    }
    // Decoded alone, the register out of range is refused too (the sketch crate
    // reads it, and merging it overflowed the estimator's sums).
    let e = scanwatch_aggregate::decode_distinct(&high).expect_err("refused");
    assert!(e.to_string().contains("register"), "{e}");
    let e = scanwatch_aggregate::decode_distinct(&empty).expect_err("refused");
    assert!(e.to_string().contains("inconsistent"), "{e}");
    // And a good pair still counts.
    let mut u = DistinctUnion::new(64);
    u.add_encoded(&good).unwrap();
    u.add_encoded(&good).unwrap();
    let n = u.finish().distinct();
    assert!((49_000..=51_000).contains(&n), "{n}");
}

/// A forged sketch found by the `distinct_counter` fuzz target: refused, no panic.
#[test]
fn a_forged_sketch_in_a_distinct_counter_is_refused() {
    let bytes: [u8; 47] = [
        1, 2, 1, 7, 11, 3, 0, 1, 0, 24, 24, 24, 0, 24, 48, 24, 24, 24, 24, 24, 24, 24, 48, 24, 0,
        24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 8, 0, 0, 0, 0, 0, 0, 0, 24,
    ];
    // It held a sketch of another precision (lg k 11), whose estimate changed once
    // merged into this build's precision.
    let err = scanwatch_aggregate::decode_distinct(&bytes).unwrap_err();
    assert!(err.to_string().contains("lg k 11"), "{err}");
}

/// A partial window whose sketch the sketch crate reads but then writes as bytes
/// it cannot read back (found by the `partial_window` fuzz target in CI) is
/// refused when read, not when the window is next stored.
#[test]
fn a_partial_window_with_an_inconsistent_sketch_is_refused() {
    let bytes: [u8; 35] = [
        1, 2, 0, 0, 1, 28, 2, 1, 7, 5, 3, 42, 1, 0, 0, 0, 0, 0, 0, 0, 1, 12, 2, 1, 7, 5, 3, 42, 1,
        0, 48, 0, 0, 0, 0,
    ];
    match scanwatch_aggregate::codec::decode_partial_body(&bytes) {
        Err(e) => assert!(e.to_string().contains("sketch"), "{e}"),
        Ok((w, times)) => {
            let again = scanwatch_aggregate::decode_partial(&scanwatch_aggregate::encode_partial(
                &w, &times,
            ));
            assert!(again.is_ok(), "own bytes do not decode: {again:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A window's bytes do not depend on the order its events came in while its
    /// counters are exact: the codec writes keys in order, never in the order of
    /// the tables that hold them (seeded at random per process: `keyed`).
    #[test]
    fn an_exact_windows_bytes_do_not_follow_the_order_of_its_events(
        events in prop::collection::vec((0u64..8, 0u32..40, 0u32..20, 1u32..5, 0u16..3), 0..200),
    ) {
        let cfg = AggregateConfig::new(3_600_000);
        let window = |order: &mut dyn Iterator<Item = &(u64, u32, u32, u32, u16)>| {
            let mut a = Aggregator::new(cfg, 10);
            for &(s, src, dst, c, port) in order {
                a.add(s, &syn(0, src, dst, 1020 + port, c));
            }
            a.open_windows().get(&0).map(encode_window)
        };
        prop_assert_eq!(window(&mut events.iter()), window(&mut events.iter().rev()));
    }
}

/// Merges of counts that would pass `u64::MAX` saturate instead of wrapping: a
/// forged or damaged part can carry any count (the decoder does not bound them),
/// and the centre merges such a part with its others (found by the
/// `partial_window` fuzz target, whose seed `merged-overflow` replays it under
/// overflow checks; this test holds it in release, where a wrap would be silent).
#[test]
fn merges_of_huge_counts_saturate() {
    use scanwatch_aggregate::{port_key, SourceIp};
    let huge = u64::MAX - 1;
    let mut w = Window::default();
    let mut c = cell_of(&[(1, 7, 9, 1)], 64);
    c.events = huge;
    c.sources.add(SourceIp(ip(7)), huge, 64);
    c.sensors.add(1, huge, 64);
    w.cells.insert((Protocol::Tcp, 1025), c);
    w.totals.all_events = huge;
    w.totals.port_events = huge;
    w.totals.icmp_events = huge;
    w.spreads
        .add(3, ip(7), port_key(Protocol::Tcp, 1025), 1, huge);
    let mut merged = w.clone();
    merged.merge(&w, 64);
    let t = &merged.totals;
    assert_eq!(
        (t.all_events, t.port_events, t.icmp_events),
        (u64::MAX, u64::MAX, u64::MAX)
    );
    let c = &merged.cells[&(Protocol::Tcp, 1025)];
    assert_eq!(c.events, u64::MAX);
    assert_eq!(c.sources.top(1, |a, b| a.cmp(b))[0].1, u64::MAX);
    assert_eq!(c.sensors.max_count(), u64::MAX);
    assert_eq!(merged.spreads.get(3).unwrap().events, u64::MAX);
}

/// An HLL4 image whose current minimum is past 49 holds registers of 64 or
/// more (the minimum plus a nibble of up to 14), which overflowed the sketch
/// crate's estimator once merged (found by the `distinct_counter` fuzz target):
/// the decoder refuses it, and takes the largest minimum that stays in range.
#[test]
fn an_hll4_image_past_the_register_range_is_refused() {
    use datasketches::hll::{HllSketch, HllType};
    use scanwatch_aggregate::{decode_distinct, DistinctUnion, HLL_LG_K};
    let mut h = HllSketch::new(HLL_LG_K, HllType::Hll4).unwrap();
    (0u64..50_000).for_each(|k| h.update(k));
    let image = h.serialize();
    assert_eq!(
        image[7] & 15,
        2,
        "an HLL4 array image (mode byte {})",
        image[7]
    );
    let counter = |cur_min: u8| {
        let mut forged = image.clone();
        forged[6] = cur_min;
        // The counter's form (a sketch), then the image.
        [&[1u8][..], &forged].concat()
    };
    let e = decode_distinct(&counter(50)).expect_err("refused");
    assert!(e.to_string().contains("register"), "{e}");
    let mut u = DistinctUnion::new(64);
    assert!(
        u.add_encoded(&counter(50)).is_err(),
        "refused by the union too"
    );
    // A minimum of 49 keeps every register under 64: read, and merged twice
    // without overflow.
    let d = decode_distinct(&counter(49)).expect("in range");
    let mut u = DistinctUnion::new(64);
    u.add(&d);
    u.add(&d);
    assert!(u.finish().distinct() > 0);
}

//! The attacks on the bounded samples under the deployment's seed (`sample_attack`:
//! the chosen addresses rank at random, the surge stays; `sweep_attack`: the
//! chosen ports rank at random, the sweep stays; `sketch_attack`: the cell's
//! sources are counted from its keyed sample, not its sketch). Every
//! test sets the same seed first (the seed is set once per process).
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod sample_attack;
mod sketch_attack;
mod sweep_attack;
use sample_attack::*;

use scanwatch_aggregate::sample_seed::{ranking, set_sample_seed};
use scanwatch_aggregate::{ip_hash, WitnessSet, Witnesses, WITNESS_SOURCES};

const SEED: u64 = 0x5eed_1234_abcd_0042;

fn seeded() {
    set_sample_seed(SEED).unwrap();
}

#[test]
fn under_a_seed_a_hostile_sensor_cannot_fill_the_sample() {
    seeded();
    assert!(set_sample_seed(7).is_err(), "another seed is refused");
    assert_ne!(ranking(), 0);
    let c = cell(&events(&chosen()));
    let left = trimmed(&c);
    eprintln!("under a seed: {left} of {REAL} real sources left after trimming");
    assert!(
        (8_500..=11_500).contains(&left),
        "{left} of {REAL} sources left"
    );
    // Written with its ranking and read back as it was.
    let back = round_trip(&c);
    assert!(back.witnesses.entries() == c.witnesses.entries());
    assert_eq!(back.witnesses.bound(), c.witnesses.bound());
    assert!(back.witnesses.sampled());
}

/// Parts cut anywhere, each written and read back, merge to the whole's sample.
#[test]
fn under_a_seed_merged_parts_keep_the_wholes_sample() {
    seeded();
    let all = events(&chosen());
    let whole = cell(&all);
    for cut in [1, all.len() / 3, all.len() / 2, all.len() - 5] {
        let mut merged = round_trip(&cell(&all[..cut]));
        merged.merge(&round_trip(&cell(&all[cut..])), 64);
        assert!(
            merged.witnesses.entries() == whole.witnesses.entries(),
            "cut at {cut}"
        );
        assert_eq!(
            merged.witnesses.bound(),
            whole.witnesses.bound(),
            "cut at {cut}"
        );
        assert_eq!(trimmed(&merged), trimmed(&whole), "cut at {cut}");
    }
}

/// A sample drawn under another ranking (a part written before the seed, or
/// under another deployment's) is read as a sample of its own entries: none of
/// them is lost, its bound is this process's largest rank of them, and merging
/// the same part again changes nothing.
#[test]
fn a_sample_drawn_under_another_ranking_is_a_sample_of_its_entries() {
    seeded();
    // The bottom 4,096 by the address hash itself: what a part ranked without a
    // seed keeps, with its bound.
    let mut by_hash: std::collections::BTreeMap<u64, WitnessSet> = Default::default();
    for (sensor, e) in events(&chosen()) {
        by_hash.entry(ip_hash(e.src)).or_default().insert(sensor);
    }
    let kept: Vec<(u64, WitnessSet)> = by_hash.into_iter().take(WITNESS_SOURCES).collect();
    let bound = kept.last().unwrap().0;
    let foreign = Witnesses::from_parts(kept.clone(), bound, 0);
    assert!(foreign.sampled());
    assert!(
        foreign.entries() == kept,
        "no entry of the foreign sample is lost"
    );
    let mut again = foreign.clone();
    again.merge(&foreign);
    assert!(again.entries() == kept);
    // It cannot estimate the cell's sources (its bound is no bottom-k bound
    // here): a cell holding it counts them from its sketch, not as ~4,096; and
    // written and read back it stays so.
    assert!(foreign.foreign());
    assert_eq!(foreign.distinct(), None);
    let mut c = cell(&events(&chosen()));
    c.witnesses = foreign.clone();
    let back = round_trip(&c);
    assert!(back.witnesses.foreign());
    assert!(back.witnesses.entries() == kept);
    let sources = c.summary(scanwatch_event::Protocol::Tcp, 1025, 10).sources;
    assert_eq!(sources, c.sources.distinct().min(c.events));
    assert!(sources > 10_000, "{sources}");
    // Read as if it had been ranked here, the bound would drop most of them.
    assert!(
        Witnesses::from_parts(kept.clone(), bound, ranking())
            .entries()
            .len()
            < kept.len()
    );
}

/// The ports that rank lowest without the seed are a random part of the sample
/// under it: the honest ports keep their share, scaled back up.
#[test]
fn under_a_seed_a_hostile_sensor_cannot_hide_a_sweep_with_chosen_ports() {
    seeded();
    let src = sweep_attack::sweeper();
    let mut all = sweep_attack::sweep(src);
    all.extend(sweep_attack::lowest(src));
    let w = sweep_attack::window(&all);
    assert!(sweep_attack::spread(&w, src).capped);
    let left = sweep_attack::trimmed(&w, src);
    eprintln!(
        "under a seed, chosen ports: {left} of the sweeper's {} ports left after trimming",
        sweep_attack::SWEPT
    );
    assert!((700..=1_300).contains(&left), "{left} ports left");
    assert!(sweep_attack::is_sweeper(&w, src));
}

/// Flooding a sweeper with ports of its own makes the hostile sensor's part of
/// the sample larger: fewer than 100 honest ports are kept, and unscaled the
/// sweep would be hidden; scaled to the estimated ports, it stays a sweep.
#[test]
fn under_a_seed_a_flood_of_ports_cannot_hide_a_sweep() {
    seeded();
    let src = sweep_attack::sweeper();
    let mut all = sweep_attack::sweep(src);
    all.extend(sweep_attack::flood(src));
    let w = sweep_attack::window(&all);
    let kept = sweep_attack::honest_kept(&w, src);
    let left = sweep_attack::trimmed(&w, src);
    let estimate = sweep_attack::spread(&w, src).ports_estimate();
    eprintln!(
        "under a seed, a flood of 65,536 ports: {kept} honest ports kept, {left} of {} after trimming and scaling (estimated ports {estimate})",
        sweep_attack::SWEPT
    );
    assert!(
        kept < 100,
        "{kept} honest ports kept: the flood did not bite"
    );
    assert!((600..=1_500).contains(&left), "{left} ports left");
    assert!(sweep_attack::is_sweeper(&w, src));
    assert!((60_000..=73_000).contains(&estimate), "estimate {estimate}");
}

/// Scaling must not turn a surge's source into a sweeper: the hostile sensor's
/// flood of one real source (tcp/1025, seen by two sensors) is trimmed away
/// before scaling.
#[test]
fn under_a_seed_a_flood_of_ports_cannot_make_a_sweeper() {
    seeded();
    let src = sweep_attack::sweeper();
    let mut all = sweep_attack::surge_source(src);
    all.extend(sweep_attack::flood(src));
    let w = sweep_attack::window(&all);
    let left = sweep_attack::trimmed(&w, src);
    assert!(left < 100, "{left} ports left");
    assert!(!sweep_attack::is_sweeper(&w, src));
}

/// An honest sweep of every tcp port by eight sensors: past the cap, its ports
/// are estimated within a few percent, and it is a sweep.
#[test]
fn under_a_seed_a_full_sweep_is_estimated() {
    seeded();
    let src = sweep_attack::sweeper();
    let w = sweep_attack::window(&sweep_attack::sweep_from(src, 0, u16::MAX));
    let s = sweep_attack::spread(&w, src);
    assert!(s.capped);
    assert_eq!(s.port_count(), scanwatch_aggregate::SPREAD_CAP as u64);
    let estimate = s.ports_estimate();
    let left = sweep_attack::trimmed(&w, src);
    eprintln!("under a seed, a sweep of 65,535 ports: estimated {estimate}, {left} after trimming");
    assert!((61_000..=70_000).contains(&estimate), "estimate {estimate}");
    assert!((61_000..=70_000).contains(&left), "{left} ports left");
    assert!(sweep_attack::is_sweeper(&w, src));
}

/// A campaign of sweepers past the cap: its ports together are estimated from
/// the samples (not the union of the samples, a seventh of them), its busiest
/// ports are led by those all five reached, and no count is above the truth; the
/// same in any order of the parts.
#[test]
fn under_a_seed_a_campaigns_ports_are_estimated() {
    seeded();
    let all = sweep_attack::campaign();
    let sw = sweep_attack::the_sweep(&sweep_attack::window(&all));
    eprintln!(
        "under a seed, a campaign of 65,535 ports: estimated {} (capped {}, estimated {})",
        sw.ports, sw.capped, sw.ports_estimated
    );
    assert_eq!(sw.sources, 5);
    assert!(sw.capped && sw.ports_estimated);
    assert!((61_000..=70_000).contains(&sw.ports), "{} ports", sw.ports);
    assert_eq!(sw.busiest_ports.len(), 10);
    for (proto, port, n) in &sw.busiest_ports {
        assert_eq!(*proto, scanwatch_event::Protocol::Tcp);
        let reached = sweep_attack::campaign_reached(*port);
        assert!(*n <= reached, "tcp/{port}: {n} of {reached}");
    }
    assert_eq!(sw.busiest_ports[0].2, 5, "the ports all five reached lead");
    // The same from parts cut anywhere, each written and read back.
    for cut in [all.len() / 3, all.len() / 2] {
        let mut merged = sweep_attack::round_trip(&sweep_attack::window(&all[..cut]));
        merged.merge(
            &sweep_attack::round_trip(&sweep_attack::window(&all[cut..])),
            64,
        );
        assert_eq!(sweep_attack::the_sweep(&merged), sw, "cut at {cut}");
    }
}

/// A capped spread sampled under another ranking (a part of a build before
/// the codec wrote it, version 5, or of another deployment's seed) keeps its
/// ports, but nothing is estimated from them: its count, a merge with it and a
/// campaign holding it are lower bounds, not a bottom-k estimate that would err
/// low; and written and read back it stays so.
#[test]
fn a_spread_sampled_under_another_ranking_is_not_estimated() {
    seeded();
    let src = sweep_attack::sweeper();
    let w = sweep_attack::window(&sweep_attack::sweep_from(src, 0, u16::MAX));
    let mine = sweep_attack::spread(&w, src);
    assert!((61_000..=70_000).contains(&mine.ports_estimate()));
    // Version 5 bytes of the same spreads: no ranking after the cap flag (and
    // no cells, whose lines version 7 writes and version 5 did not).
    let mut spreads_only = w.clone();
    spreads_only.cells.clear();
    let bytes = scanwatch_aggregate::encode_window(&spreads_only);
    let body = &bytes[..bytes.len() - 8];
    assert_eq!(body[0], 7);
    let mark = ranking().to_le_bytes();
    let at: Vec<usize> = (0..body.len() - 8)
        .filter(|i| body[i + 1..i + 9] == mark && body[*i] == 1)
        .collect();
    assert_eq!(at.len(), 1, "one capped spread, one ranking written");
    let v5 = [&[5u8][..], &body[1..at[0] + 1], &body[at[0] + 9..]].concat();
    let old = scanwatch_aggregate::codec::decode_body(&v5).expect("version 5 reads");
    let theirs = sweep_attack::spread(&old, src);
    assert!(theirs.foreign && theirs.capped);
    assert_eq!(theirs.port_count(), mine.port_count());
    assert_eq!(
        theirs.ports_estimate(),
        theirs.port_count(),
        "a lower bound"
    );
    // Marked foreign, written and read back: still foreign.
    let back = sweep_attack::round_trip(&old);
    assert!(sweep_attack::spread(&back, src).foreign);
    // Merged with a part of this ranking: foreign, a lower bound.
    let mut merged = sweep_attack::round_trip(&w);
    merged.merge(&old, 64);
    let m = sweep_attack::spread(&merged, src);
    assert!(m.foreign);
    assert_eq!(m.ports_estimate(), m.port_count());
    // A campaign holding it is not estimated either.
    let mut all = sweep_attack::window(&sweep_attack::campaign());
    let sw = sweep_attack::the_sweep(&all);
    assert!(sw.ports_estimated);
    let first = sweep_attack::campaign()[0].1.src;
    let h = scanwatch_aggregate::ip_hash(first);
    let mut foreign = all.spreads.get(h).unwrap().clone();
    foreign.foreign = true;
    // Merged into the sweeper's record (its events doubled, its ports the same):
    // the record becomes foreign, as a merge with a foreign part makes it.
    all.spreads.insert_spread(h, foreign);
    assert!(all.spreads.get(h).unwrap().foreign);
    let sw = sweep_attack::the_sweep(&all);
    assert!(sw.capped && !sw.ports_estimated);
    // The count is then the kept ports of the sweepers together: a lower bound.
    let kept: std::collections::HashSet<u32> = all
        .spreads
        .iter()
        .flat_map(|(_, s)| s.ports().map(|p| p.key))
        .collect();
    assert_eq!(sw.ports, kept.len() as u64);
    assert!(sw.ports < 30_000, "{} ports", sw.ports);
}

/// Parts cut anywhere, each written and read back, merge to the whole's kept
/// ports and trimmed count.
#[test]
fn under_a_seed_merged_parts_keep_the_wholes_ports() {
    seeded();
    let src = sweep_attack::sweeper();
    let mut all = sweep_attack::sweep(src);
    all.extend(sweep_attack::lowest(src));
    // Interleaved, so that each part holds honest and hostile ports.
    all.sort_by_key(|(_, e)| e.dst_port.map(|p| p.wrapping_mul(40_503)));
    let whole = sweep_attack::window(&all);
    let keys = |w: &scanwatch_aggregate::Window| {
        let mut k: Vec<(u32, u32, u32, bool)> = sweep_attack::spread(w, src)
            .ports()
            .map(|p| (p.key, p.sensor, p.events, p.multi))
            .collect();
        k.sort_unstable();
        k
    };
    for cut in [1, all.len() / 3, all.len() / 2, all.len() - 5] {
        let mut merged = sweep_attack::round_trip(&sweep_attack::window(&all[..cut]));
        merged.merge(
            &sweep_attack::round_trip(&sweep_attack::window(&all[cut..])),
            64,
        );
        assert_eq!(keys(&merged), keys(&whole), "cut at {cut}");
        assert_eq!(
            sweep_attack::trimmed(&merged, src),
            sweep_attack::trimmed(&whole, src),
            "cut at {cut}"
        );
    }
}

/// A sketch inflated with chosen addresses does not move the cell's count: it
/// is counted from the witnesses' keyed sample.
#[test]
fn under_a_seed_a_sketch_aimed_at_does_not_move_the_count() {
    seeded();
    let chosen = sketch_attack::chosen();
    let c = sketch_attack::attacked(&chosen, 1);
    let truth = u64::from(sketch_attack::REAL) + chosen.len() as u64;
    let (sources, left) = sketch_attack::read(&c);
    eprintln!(
        "under a seed, {} chosen addresses: the sketch reads {} sources, the cell {sources} (truth {truth}), {left} after trimming (real: {})",
        chosen.len(),
        c.sources.distinct(),
        sketch_attack::REAL
    );
    assert!(
        sources.abs_diff(truth) * 20 < truth,
        "{sources} sources, truth {truth}"
    );
    assert!((100..=400).contains(&left), "{left} sources after trimming");
}

/// A cell counts alike before and after the codec (`through_the_codec`).
#[test]
fn under_a_seed_a_cell_counts_alike_before_and_after_the_codec() {
    seeded();
    let [before, after] = through_the_codec();
    assert_eq!(before, after);
    assert!(before.0.abs_diff(6_000) < 300, "{before:?}");
}

/// A sweeper of every tcp port keeps a random sample of its ports under a seed:
/// on a busy port whose record it did not keep, it is still set aside (found in
/// the cell's witnesses).
#[test]
fn under_a_seed_a_full_sweeper_is_set_aside_on_a_busy_port() {
    seeded();
    let src = sweep_attack::sweeper();
    let mut all = sweep_attack::sweep_from(src, 0, u16::MAX);
    // tcp/20,000 is busy: 100 other sources, sketched past 64.
    for i in 0..100u32 {
        let mut e = syn(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 | i,
        )));
        e.dst_port = Some(20_000);
        all.push((u64::from(i % 8), e));
    }
    let w = sweep_attack::window(&all);
    let kept = scanwatch_aggregate::port_key(scanwatch_event::Protocol::Tcp, 20_000);
    assert!(
        sweep_attack::spread(&w, src).port(kept).is_none(),
        "the record happens to keep the port: pick another"
    );
    let closed = scanwatch_aggregate::ClosedWindow::from_window(
        scanwatch_event::Timestamp(0),
        3_600_000,
        &w,
        10,
        scanwatch_aggregate::SweepRule::default(),
    );
    let cell = closed
        .cells
        .iter()
        .find(|c| c.port == 20_000)
        .expect("the busy port's cell");
    assert!(!cell.exact);
    assert_eq!(cell.swept_sources, 1);
    assert_eq!(cell.sources, 100);
}

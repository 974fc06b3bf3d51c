//! The attacks on the bounded samples without a seed (`sample_attack`: a cell's
//! witnesses, `sweep_attack`: a source's ports, `sketch_attack`: a cell's
//! distinct-source sketch): they work (the last only up to the cell's events),
//! which is why the centre ranks under the deployment's seed (`sample_keyed.rs`).
//! A process of its own: no seed is ever set here.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod sample_attack;
mod sketch_attack;
mod sweep_attack;
use sample_attack::*;

#[test]
fn without_a_seed_a_hostile_sensor_fills_the_sample_and_hides_a_surge() {
    assert_eq!(scanwatch_aggregate::sample_seed::ranking(), 0);
    let c = cell(&events(&chosen()));
    let left = trimmed(&c);
    eprintln!("without a seed: {left} of {REAL} real sources left after trimming");
    assert!(left < 2_000, "{left} of {REAL} sources left");
    // Once sources were ranked without a seed, none may be set.
    assert!(scanwatch_aggregate::sample_seed::set_sample_seed(1).is_err());
}

#[test]
fn without_a_seed_a_hostile_sensor_fills_a_sweepers_ports_and_hides_the_sweep() {
    let src = sweep_attack::sweeper();
    let honest = sweep_attack::window(&sweep_attack::sweep(src));
    assert!(sweep_attack::is_sweeper(&honest, src));
    let mut all = sweep_attack::sweep(src);
    all.extend(sweep_attack::lowest(src));
    let w = sweep_attack::window(&all);
    let left = sweep_attack::trimmed(&w, src);
    eprintln!(
        "without a seed: {left} of the sweeper's {} ports left after trimming",
        sweep_attack::SWEPT
    );
    assert_eq!(left, 0);
    assert!(!sweep_attack::is_sweeper(&w, src));
}

/// Without a seed a campaign's samples are its smallest keys, no random sample:
/// its ports are a lower bound (not estimated), and its busiest ports' counts are
/// at least the sweepers that reached them, exact below every sample's bound
/// (tcp 1-4,096).
#[test]
fn without_a_seed_a_campaigns_ports_are_a_lower_bound() {
    let sw = sweep_attack::the_sweep(&sweep_attack::window(&sweep_attack::campaign()));
    assert!(sw.capped && !sw.ports_estimated);
    assert_eq!(sw.sources, 5);
    assert_eq!(sw.ports, 8_192, "tcp 1-4,096 and 10,001-14,096");
    assert_eq!(sw.busiest_ports.len(), 10);
    for (_, port, n) in &sw.busiest_ports {
        let reached = sweep_attack::campaign_reached(*port);
        assert!(*n <= reached, "tcp/{port}: {n} of {reached}");
        if *port <= 4_096 {
            assert_eq!(*n, reached, "tcp/{port} is below every sample's bound");
        }
    }
}

/// The cell's count is held to its lines, whatever their `count`: sent in lines
/// of count 65,535, the chosen addresses read no more than in lines of 1.
#[test]
fn without_a_seed_a_sketch_aimed_at_is_held_to_the_cells_lines() {
    let chosen = sketch_attack::chosen();
    for count in [1, 65_535] {
        let c = sketch_attack::attacked(&chosen, count);
        let sketch = c.sources.distinct();
        let (sources, left) = sketch_attack::read(&c);
        eprintln!(
            "without a seed, {} chosen addresses in lines of {count}: the sketch reads {sketch} sources, the cell {sources} ({} events, {} lines), {left} after trimming (real: {})",
            chosen.len(),
            c.events,
            c.lines,
            sketch_attack::REAL
        );
        assert!(sketch > 1_000_000, "the sketch was not inflated: {sketch}");
        assert!(sources <= c.lines, "{sources} sources in {} lines", c.lines);
        assert!(left < 1_000, "{left} sources after trimming");
    }
}

/// Up to 4,096 sources a cell's count is exact, although its sketch took over
/// at the exact limit (64) and is off by some.
#[test]
fn a_cell_of_four_thousand_sources_counts_them_exactly() {
    let mut c = scanwatch_aggregate::Cell::default();
    for i in 0..4_000u32 {
        let e = syn(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 | i,
        )));
        c.add(
            u64::from(i % 10),
            &e,
            scanwatch_aggregate::ip_hash(e.src),
            64,
        );
    }
    assert!(!c.sources.is_exact(), "the sketch took over");
    let sketch = c.sources.distinct();
    let (sources, _) = sketch_attack::read(&c);
    eprintln!("4,000 sources: the sketch reads {sketch}, the cell {sources}");
    assert_ne!(
        sketch, 4_000,
        "the sketch happens to be exact: pick another size"
    );
    assert_eq!(sources, 4_000);
}

/// A cell counts alike before and after the codec (`through_the_codec`).
#[test]
fn without_a_seed_a_cell_counts_alike_before_and_after_the_codec() {
    let [before, after] = through_the_codec();
    assert_eq!(before, after);
}

//! The attacks on the bounded samples without a seed (`sample_attack`: a cell's
//! witnesses, `sweep_attack`: a source's ports): they work, which is why the
//! centre ranks under the deployment's seed (`sample_keyed.rs`). A process of its
//! own: no seed is ever set here.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod sample_attack;
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

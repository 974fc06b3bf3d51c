//! The attack on the witnesses' sample without a seed (`sample_attack`): it works,
//! which is why the centre ranks under the deployment's seed
//! (`witness_sample_keyed.rs`). A process of its own: no seed is ever set here.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod sample_attack;
use sample_attack::*;

#[test]
fn without_a_seed_a_hostile_sensor_fills_the_sample_and_hides_a_surge() {
    assert_eq!(scanwatch_aggregate::witness::ranking(), 0);
    let c = cell(&events(&chosen()));
    let left = trimmed(&c);
    eprintln!("without a seed: {left} of {REAL} real sources left after trimming");
    assert!(left < 2_000, "{left} of {REAL} sources left");
    // Once sources were ranked without a seed, none may be set.
    assert!(scanwatch_aggregate::witness::set_sample_seed(1).is_err());
}

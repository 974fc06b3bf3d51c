//! The attack on the witnesses' sample under the deployment's seed
//! (`sample_attack`): the chosen addresses rank at random, the surge stays. Every
//! test sets the same seed first (the seed is set once per process).
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

mod sample_attack;
use sample_attack::*;

use scanwatch_aggregate::witness::{ranking, set_sample_seed};
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
    // Read as if it had been ranked here, the bound would drop most of them.
    assert!(
        Witnesses::from_parts(kept.clone(), bound, ranking())
            .entries()
            .len()
            < kept.len()
    );
}

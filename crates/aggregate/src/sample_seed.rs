//! The deployment's secret sample seed, and the rank it gives a key: which keys a
//! bounded sample keeps when there are too many to keep them all (a cell's
//! witnessed sources, [`crate::witness`]; a source's ports, [`crate::spread`]).
//!
//! A sample that keeps the keys of smallest *public* value can be filled by a
//! sender that chooses its keys: a hostile sensor reports the addresses (or ports)
//! that sort first, and the sample holds only what it alone saw. Ranked by a keyed
//! hash under a secret seed, it cannot tell which of its keys rank low. Every
//! process that merges a deployment's aggregates must rank under the same seed:
//! the embedded store keeps it (`deployment` table), the scale-out roles share it
//! through the bus. Without a seed (`analyze`, tests) the rank is the key itself,
//! as before the seed existed.

use std::sync::OnceLock;

/// `None` once read without a seed (then no seed may be set: a cell may already
/// hold a bound ranked by the address hash).
static SAMPLE_SEED: OnceLock<Option<u64>> = OnceLock::new();

/// The sample seed cannot be set: set already to another value, or this process
/// already ranked sources without one.
#[derive(Debug, thiserror::Error)]
#[error("the sample seed must be set once, before any cell is made")]
pub struct SeedAlreadySet;

/// Sets the deployment's sample seed for this process, before any cell is made
/// (the binary does it once, from the store or the bus). Setting the same seed
/// again is accepted; another one, or any after a source was ranked without a
/// seed, is refused.
pub fn set_sample_seed(seed: u64) -> Result<(), SeedAlreadySet> {
    match SAMPLE_SEED.get_or_init(|| Some(seed)) {
        Some(s) if *s == seed => Ok(()),
        _ => Err(SeedAlreadySet),
    }
}

#[inline]
pub(crate) fn seed() -> Option<u64> {
    *SAMPLE_SEED.get_or_init(|| None)
}

/// The rank of the key `h` (a source's address hash, a port key) under `seed`
/// (`None`: the key itself). SipHash-1-3, a keyed pseudo-random function with a fixed specification: a
/// sender cannot tell which of its keys rank low without the seed, and every
/// build and platform ranks alike (stored bounds stay comparable). The 64-bit
/// seed is spread to SipHash's 128-bit key.
#[inline]
pub fn rank_under(seed: Option<u64>, h: u64) -> u64 {
    match seed {
        None => h,
        Some(s) => siphasher::sip::SipHasher13::new_with_keys(s, s.rotate_left(32) ^ RANK_KEY)
            .hash(&h.to_le_bytes()),
    }
}

/// Spreads the seed to the key's second half (any fixed constant would do).
const RANK_KEY: u64 = 0x7363_616e_7761_7463; // "scanwatc"

/// The rank of `h` under this process's seed.
#[inline]
pub(crate) fn rank(h: u64) -> u64 {
    rank_under(seed(), h)
}

/// How many keys a bottom-k sample stands for: `k` kept keys whose largest rank
/// is `largest` (k minimum values: under a seed the ranks are uniform, so the
/// k-th smallest covers about (k - 1) / n of the rank space). At least `k`.
/// Meaningful only under a seed: without one the rank is the key itself.
pub(crate) fn kmv_estimate(k: u64, largest: u64) -> u64 {
    if k < 2 {
        return k;
    }
    let covered = (largest as f64 + 1.0) / 18_446_744_073_709_551_616.0;
    (((k - 1) as f64 / covered).round() as u64).max(k)
}

/// Which ranking this process samples by, as the codec writes it beside a
/// sampled cell: 0 without a seed, otherwise a fingerprint of the ranking
/// function and the seed (not the seed: stored bytes must not give it away).
pub fn ranking() -> u64 {
    seed().map_or(0, |s| {
        xxhash_rust::xxh3::xxh3_64_with_seed(b"scanwatch witness ranking: siphash-1-3 v1", s) | 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rank is stored (bounds in parts and checkpoints) and shared between
    /// processes and builds: its values are pinned, so a change of the function
    /// cannot pass unnoticed (it would need a new `ranking` version).
    #[test]
    fn the_rank_is_pinned() {
        assert_eq!(rank_under(None, 42), 42);
        assert_eq!(rank_under(Some(1), 2), 6_472_991_907_779_705_669);
        assert_eq!(
            rank_under(Some(0x5eed), u64::MAX),
            2_938_458_524_844_409_446
        );
    }
}

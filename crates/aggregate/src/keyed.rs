//! Hash tables keyed by what a sender chooses: source addresses and their hashes.
//!
//! Their keys come from the wire (a scanner picks its addresses, a hostile sensor
//! its whole events), and the address hash ([`crate::ip_hash`]) is the stable,
//! unseeded xxh3 every process must agree on for the sketches. Under a fixed
//! table hasher (FxHash) anyone can search offline for addresses that all land
//! in one bucket and make each insert walk the others: a window of such sources
//! costs quadratic time and blinds the centre. These tables hash their keys again
//! with foldhash under a seed drawn at random per process, so the buckets
//! cannot be predicted; iteration order is then random too, so nothing written
//! or shown may follow it (the codec sorts what it writes).
//!
//! Tables keyed by ports (at most 2 × 65,536 keys, none chosen to collide) keep
//! the quicker fixed FxHash.

/// A map whose keys a sender chooses.
pub type KeyedMap<K, V> = std::collections::HashMap<K, V, Keyed>;

/// A set whose keys a sender chooses.
pub type KeyedSet<K> = std::collections::HashSet<K, Keyed>;

/// The tables' hasher: foldhash under a seed drawn once per process from the
/// operating system's randomness (through the standard library's `RandomState`,
/// which asks it). Zero-sized, like FxHash's, so a table costs no more memory; a
/// seed per process rather than per table (foldhash's `RandomState`) because
/// tables are made per cell and per window, millions of times, and drawing a seed
/// for each measured slower.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keyed;

fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5ca0_u64)
    })
}

impl std::hash::BuildHasher for Keyed {
    type Hasher = foldhash::fast::FoldHasher;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FixedState::with_seed(process_seed()).build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;
    use std::net::{IpAddr, Ipv6Addr};

    const BITS: u32 = 10;
    const MASK: u64 = (1 << BITS) - 1;

    /// `n` addresses of one IPv6 prefix whose stable hashes a scanner searched
    /// for: under the fixed FxHash they all fall in bucket 0 of a 1,024-bucket table.
    fn chosen(n: usize) -> Vec<u64> {
        let fixed = rustc_hash::FxBuildHasher;
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
        (0u128..)
            .map(|i| crate::ip_hash(IpAddr::V6(Ipv6Addr::from(base + i))))
            .filter(|h| fixed.hash_one(h) & MASK == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn addresses_chosen_to_collide_spread_over_a_keyed_tables_buckets() {
        let hashes = chosen(512);
        // The attack, as it was: one bucket for all of them.
        let fixed = rustc_hash::FxBuildHasher;
        let under_fx: KeyedSet<u64> = hashes.iter().map(|h| fixed.hash_one(h) & MASK).collect();
        assert_eq!(under_fx.len(), 1);
        // The tables' own hasher spreads them (512 random keys over 1,024 buckets
        // fill about 400; fewer than 300 would be a hasher an attacker can aim at).
        let table: KeyedMap<u64, ()> = KeyedMap::default();
        let buckets: KeyedSet<u64> = hashes
            .iter()
            .map(|h| table.hasher().hash_one(h) & MASK)
            .collect();
        assert!(buckets.len() > 300, "{} buckets", buckets.len());
    }
}

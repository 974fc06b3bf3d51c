//! Who saw each source of a cell: the witnesses that make the numbers robust to a
//! single sensor (`docs/security.md`).
//!
//! For every source the cell keeps a [`WitnessSet`]: the sensors that reported it,
//! up to [`WITNESS_CAP`] of them (the smallest keys, so a set is the same whatever
//! the order of the events, and its size is exact below the cap). Two questions
//! are answered from them:
//! - *which sources did only one sensor see* ([`Witnesses::sole_counts`]): what
//!   trimming the largest contributors removes from the distinct-source count;
//! - *which sources did several sensors see* (corroboration): only those may go to
//!   a warning's top sources and to the blocklist.
//!
//! Memory is bounded: past [`WITNESS_SOURCES`] sources a cell keeps the sources
//! of smallest *rank* only (a bottom-k sample, which merges exactly: the bottom k
//! of a union is the bottom k of the parts' bottom k), and counts are scaled from
//! the sample. Hand-written: no sketch crate keeps a small set per sampled key.
//!
//! The rank of a source is its address hash hashed again under the deployment's
//! sample seed ([`crate::sample_seed`]). The address hash alone is public (unseeded
//! xxh3, which every process must agree on): a hostile sensor could search offline
//! for addresses of smallest hash, report thousands of them, and fill the sample
//! with sources only it saw; the scaled count of its sole sources would then be
//! nearly the whole cell, and trimming the largest contributor would hide a real
//! surge. Under a secret seed it cannot tell which addresses rank low. Every
//! process that merges a deployment's cells must rank under the same seed: the
//! embedded store keeps it (`deployment` table), the scale-out roles share it
//! through the bus. Without a seed (`analyze`, tests) the rank is the address
//! hash, as before the seed existed; the codec writes which ranking drew a
//! sample, and a sample drawn under another is taken as a sample of its own kept
//! entries (still a bounded, unbiased-by-the-sender subset: never mixed bounds).

use crate::keyed::KeyedMap;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::sample_seed::{rank, ranking};
use crate::SensorKey;

/// Witnesses kept per source: enough for any corroboration threshold we accept
/// (`blocklist_min_sensors`, `confirm_min_sensors` are at most this).
pub const WITNESS_CAP: usize = 4;

/// Sources per cell whose witnesses are kept exactly; beyond it a bottom-k sample.
pub const WITNESS_SOURCES: usize = 4096;

/// Up to [`WITNESS_CAP`] sensor keys, the smallest ones, sorted.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
// As the list of its keys: read back through `insert`, so a stored set cannot
// break the sorted, capped invariant.
#[serde(into = "Vec<SensorKey>", from = "Vec<SensorKey>")]
pub struct WitnessSet {
    keys: [SensorKey; WITNESS_CAP],
    len: u8,
}

impl From<WitnessSet> for Vec<SensorKey> {
    fn from(w: WitnessSet) -> Vec<SensorKey> {
        w.keys().to_vec()
    }
}

impl From<Vec<SensorKey>> for WitnessSet {
    fn from(keys: Vec<SensorKey>) -> WitnessSet {
        let mut w = WitnessSet::default();
        keys.into_iter().for_each(|k| w.insert(k));
        w
    }
}

impl WitnessSet {
    pub fn one(k: SensorKey) -> WitnessSet {
        let mut s = WitnessSet::default();
        s.insert(k);
        s
    }

    /// Adds a sensor; past the cap the largest key is dropped.
    pub fn insert(&mut self, k: SensorKey) {
        let n = self.len as usize;
        let i = self.keys[..n].partition_point(|x| *x < k);
        if i < n && self.keys[i] == k {
            return;
        }
        if i >= WITNESS_CAP {
            return;
        }
        let end = n.min(WITNESS_CAP - 1);
        self.keys.copy_within(i..end, i + 1);
        self.keys[i] = k;
        self.len = (n + 1).min(WITNESS_CAP) as u8;
    }

    pub fn merge(&mut self, o: &WitnessSet) {
        for k in o.keys() {
            self.insert(*k);
        }
    }

    pub fn keys(&self) -> &[SensorKey] {
        &self.keys[..self.len as usize]
    }

    /// Sensors that saw the source: exact below [`WITNESS_CAP`], at least that many
    /// at the cap.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The one sensor that saw the source, if only one did.
    pub fn sole(&self) -> Option<SensorKey> {
        (self.len == 1).then_some(self.keys[0])
    }
}

/// The witnesses of a cell's sources, by source address hash.
#[derive(Clone, Debug, Default)]
pub enum Witnesses {
    #[default]
    Empty,
    Small(SmallVec<[(u64, WitnessSet); 1]>),
    /// With `bound`: sources ranking above it are not kept (u64::MAX: all are);
    /// and whether the sample was drawn, in whole or in part, under another
    /// ranking than this process's ([`Witnesses::foreign`]; only when sampled).
    Map(KeyedMap<u64, WitnessSet>, u64, bool),
}

impl Witnesses {
    /// Records that `sensor` saw the source hashing to `src`.
    #[inline]
    pub fn add(&mut self, src: u64, sensor: SensorKey) {
        self.add_set(src, &WitnessSet::one(sensor));
    }

    fn add_set(&mut self, src: u64, set: &WitnessSet) {
        match self {
            Witnesses::Empty => *self = Witnesses::Small(smallvec::smallvec![(src, *set)]),
            Witnesses::Small(v) => {
                if let Some(e) = v.iter_mut().find(|e| e.0 == src) {
                    e.1.merge(set);
                    return;
                }
                v.push((src, *set));
                if v.len() > crate::counted::SMALL_KEYS {
                    let m: KeyedMap<u64, WitnessSet> = v.drain(..).collect();
                    *self = Witnesses::Map(m, u64::MAX, false);
                }
            }
            Witnesses::Map(m, bound, _) => {
                if *bound != u64::MAX && rank(src) > *bound {
                    return;
                }
                m.entry(src).or_default().merge(set);
                if m.len() > 2 * WITNESS_SOURCES {
                    *bound = prune(m);
                }
            }
        }
    }

    /// Merges another part of the same cell: equal to recording the union.
    pub fn merge(&mut self, o: &Witnesses) {
        match o {
            Witnesses::Empty => {}
            Witnesses::Small(v) => v.iter().for_each(|(h, s)| self.add_set(*h, s)),
            Witnesses::Map(m, b, f) => {
                m.iter().for_each(|(h, s)| self.add_set(*h, s));
                if let Witnesses::Map(mine, bound, foreign) = self {
                    *foreign |= *f;
                    if *b < *bound {
                        *bound = *b;
                        mine.retain(|h, _| rank(*h) <= *b);
                    }
                } else if *b != u64::MAX {
                    // Still small although the other part was sampled: keep its bound.
                    let mine: KeyedMap<u64, WitnessSet> = self
                        .entries()
                        .into_iter()
                        .filter(|(h, _)| rank(*h) <= *b)
                        .collect();
                    *self = Witnesses::Map(mine, *b, *f);
                }
            }
        }
    }

    /// The kept (source hash, witnesses), sorted by hash, at most
    /// [`WITNESS_SOURCES`] of them (those of smallest rank).
    pub fn entries(&self) -> Vec<(u64, WitnessSet)> {
        let mut v: Vec<(u64, WitnessSet)> = match self {
            Witnesses::Empty => Vec::new(),
            Witnesses::Small(v) => v.to_vec(),
            Witnesses::Map(m, _, _) => m.iter().map(|(h, s)| (*h, *s)).collect(),
        };
        if v.len() > WITNESS_SOURCES {
            // Each rank computed once (a keyed hash), then the smallest kept.
            let mut ranked: Vec<(u64, u64, WitnessSet)> =
                v.into_iter().map(|(h, s)| (rank(h), h, s)).collect();
            ranked.select_nth_unstable_by_key(WITNESS_SOURCES - 1, |e| (e.0, e.1));
            ranked.truncate(WITNESS_SOURCES);
            v = ranked.into_iter().map(|(_, h, s)| (h, s)).collect();
        }
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// The rank above which sources are not kept (u64::MAX: none left out).
    pub fn bound(&self) -> u64 {
        match self {
            Witnesses::Map(m, b, _) if m.len() > WITNESS_SOURCES => (*b).min(
                self.entries()
                    .iter()
                    .map(|e| rank(e.0))
                    .max()
                    .unwrap_or(u64::MAX),
            ),
            Witnesses::Map(_, b, _) => *b,
            _ => u64::MAX,
        }
    }

    /// Witnesses from kept entries and their bound (what [`Witnesses::entries`] and
    /// [`Witnesses::bound`] give; the codec's read), sampled under `ranked_by`
    /// ([`ranking`] when they were written). A sample drawn under another ranking
    /// than this process's is taken as the sample of its own entries: the bound
    /// becomes their largest rank here, so later merges compare like with like,
    /// and it is marked [`Witnesses::foreign`].
    pub fn from_parts(entries: Vec<(u64, WitnessSet)>, bound: u64, ranked_by: u64) -> Witnesses {
        let foreign = bound != u64::MAX && ranked_by != ranking();
        let bound = if foreign {
            entries.iter().map(|e| rank(e.0)).max().unwrap_or(0)
        } else {
            bound
        };
        let mut w = if bound == u64::MAX {
            Witnesses::Empty
        } else {
            Witnesses::Map(KeyedMap::default(), bound, foreign)
        };
        for (h, s) in entries {
            w.add_set(h, &s);
        }
        w
    }

    /// The cell's distinct sources, counted from its witnesses: exact up to
    /// [`WITNESS_SOURCES`] sources; past that, under the deployment's seed,
    /// estimated from the sample ([`crate::sample_seed::kmv_estimate`] of a keyed
    /// rank). `None` without a seed past that, for a sample drawn under another
    /// ranking ([`Witnesses::foreign`]: its bound is not a bottom-k bound here), or
    /// without witnesses (a part of a build before them): the caller takes the
    /// sketch's estimate then. (A cell merged from parts of a build before
    /// witnesses and of this one counts only the witnessed part.) Why not the sketch
    /// first: a HyperLogLog's hash is public (every process must agree on it), so
    /// a sender can choose a few thousand addresses whose hashes set its
    /// registers high and make a port of 200 sources read as millions
    /// (docs/security.md); a count or a keyed sample cannot be aimed at.
    pub fn distinct(&self) -> Option<u64> {
        self.distinct_with(|| sample_estimate(&self.entries()))
    }

    /// [`Witnesses::distinct`] from this set's [`Witnesses::entries`], for a
    /// caller that has them already (a cell's read-out: selecting them once).
    pub fn distinct_in(&self, entries: &[(u64, WitnessSet)]) -> Option<u64> {
        self.distinct_with(|| sample_estimate(entries))
    }

    /// `sampled`: the estimate from the kept entries, asked only of a sample.
    fn distinct_with(&self, sampled: impl FnOnce() -> Option<u64>) -> Option<u64> {
        match self {
            Witnesses::Empty => None,
            Witnesses::Small(v) => Some(v.len() as u64),
            Witnesses::Map(_, _, true) => None,
            // Exact while the codec writes every kept source (no more than
            // `WITNESS_SOURCES`), so a cell counts alike before and after it.
            Witnesses::Map(m, b, _) if *b == u64::MAX && m.len() <= WITNESS_SOURCES => {
                Some(m.len() as u64)
            }
            Witnesses::Map(..) => {
                if ranking() == 0 {
                    return None;
                }
                sampled()
            }
        }
    }

    /// Whether the source hashing to `src` is kept.
    pub fn contains(&self, src: u64) -> bool {
        match self {
            Witnesses::Empty => false,
            Witnesses::Small(v) => v.iter().any(|e| e.0 == src),
            Witnesses::Map(m, _, _) => m.contains_key(&src),
        }
    }

    /// Whether the sample was drawn, in whole or in part, under another ranking
    /// than this process's (a part written before the seed, or under another
    /// deployment's): its entries are kept, but it cannot estimate the cell's
    /// sources. The codec writes it so that it reads back foreign.
    pub fn foreign(&self) -> bool {
        matches!(self, Witnesses::Map(_, _, true))
    }

    /// Whether only a sample of the sources is kept.
    pub fn sampled(&self) -> bool {
        match self {
            Witnesses::Map(m, b, _) => *b != u64::MAX || m.len() > WITNESS_SOURCES,
            _ => false,
        }
    }

    /// Per sensor, the sources only it saw, most first (ties by key), scaled to
    /// `distinct` sources when only a sample is kept.
    pub fn sole_counts(&self, distinct: u64) -> Vec<(SensorKey, u64)> {
        self.sole_counts_in(&self.entries(), distinct)
    }

    /// [`Witnesses::sole_counts`] from this cell's [`Witnesses::entries`], for a
    /// caller that has them already (a cell's read-out: sorting them once, not twice).
    pub fn sole_counts_in(
        &self,
        entries: &[(u64, WitnessSet)],
        distinct: u64,
    ) -> Vec<(SensorKey, u64)> {
        let mut by: FxHashMap<SensorKey, u64> = FxHashMap::default();
        for (_, s) in entries {
            if let Some(k) = s.sole() {
                *by.entry(k).or_insert(0) += 1;
            }
        }
        let scale = if self.sampled() && !entries.is_empty() {
            distinct as f64 / entries.len() as f64
        } else {
            1.0
        };
        let mut v: Vec<(SensorKey, u64)> = by
            .into_iter()
            .map(|(k, n)| (k, (n as f64 * scale).round() as u64))
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Witnesses::Empty => 0,
            Witnesses::Small(v) => {
                if v.spilled() {
                    v.capacity() * std::mem::size_of::<(u64, WitnessSet)>()
                } else {
                    0
                }
            }
            Witnesses::Map(m, _, _) => {
                m.capacity() * (std::mem::size_of::<(u64, WitnessSet)>() + 1)
            }
        }
    }
}

/// The sources a sample's kept entries stand for (k minimum values of the rank).
fn sample_estimate(entries: &[(u64, WitnessSet)]) -> Option<u64> {
    let largest = entries.iter().map(|e| rank(e.0)).max()?;
    Some(crate::sample_seed::kmv_estimate(
        entries.len() as u64,
        largest,
    ))
}

/// Keeps the [`WITNESS_SOURCES`] sources of smallest rank; returns the largest
/// rank kept.
fn prune(m: &mut KeyedMap<u64, WitnessSet>) -> u64 {
    let mut ranks: Vec<u64> = m.keys().map(|h| rank(*h)).collect();
    ranks.sort_unstable();
    let bound = ranks[WITNESS_SOURCES - 1];
    m.retain(|h, _| rank(*h) <= bound);
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_the_smallest_keys_whatever_the_order() {
        let keys = [9u64, 3, 7, 1, 5, 3, 8];
        let mut a = WitnessSet::default();
        keys.iter().for_each(|k| a.insert(*k));
        let mut b = WitnessSet::default();
        keys.iter().rev().for_each(|k| b.insert(*k));
        assert_eq!(a, b);
        assert_eq!(a.keys(), &[1, 3, 5, 7]);
        assert_eq!(WitnessSet::one(4).sole(), Some(4));
        assert_eq!(a.sole(), None);
    }

    #[test]
    fn sampled_witnesses_merge_like_the_union() {
        let mut whole = Witnesses::default();
        let mut parts = [Witnesses::default(), Witnesses::default()];
        for i in 0..(3 * WITNESS_SOURCES as u64) {
            let h = crate::key_hash(&i.to_le_bytes());
            let sensor = i % 5;
            whole.add(h, sensor);
            parts[(i % 2) as usize].add(h, sensor);
            parts[((i / 7) % 2) as usize].add(h, sensor + 1);
            whole.add(h, sensor + 1);
        }
        let mut merged = Witnesses::default();
        merged.merge(&parts[0]);
        merged.merge(&parts[1]);
        assert!(whole.sampled() && merged.sampled());
        assert_eq!(whole.entries(), merged.entries());
        assert_eq!(whole.entries().len(), WITNESS_SOURCES);
    }
}

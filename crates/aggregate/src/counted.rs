//! A keyed counter that is exact while small and becomes a pair of mergeable sketches
//! (HyperLogLog for the distinct count, frequent items for the heaviest keys) when it
//! outgrows its limit. Used for sources, targets and sensors of a cell.

use std::hash::Hash;

use crate::keyed::{KeyedMap, KeyedSet};
use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};

/// log2 of the HLL register count: 2^14 registers give a relative standard error of
/// 1.04/√16384 ≈ 0.8 %, so 2 % is about 2.5 standard errors.
pub const HLL_LG_K: u8 = 14;
/// Map size of the frequent-items sketch (count error ≤ 3.5/256 ≈ 1.4 % of the weight).
pub const HEAVY_MAP_SIZE: usize = 256;

/// Keys kept inline, without a heap allocation, before a hash map is used. Most
/// cells of a real sensor network see one or two sources.
pub const SMALL_KEYS: usize = 8;

/// Exact key → count pairs (inline while few, then a map), or sketches once there
/// are more than `limit` keys.
#[derive(Clone)]
pub enum Counted<K: Eq + Hash + Clone> {
    Small(smallvec::SmallVec<[(K, u64); 2]>),
    Exact(KeyedMap<K, u64>),
    Sketch(Box<Sketches<K>>),
}

#[derive(Clone)]
pub struct Sketches<K: Eq + Hash + Clone> {
    pub distinct: HllSketch,
    pub heavy: FrequentItemsSketch<K>,
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for Sketches<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sketches(~{:.0} keys)",
            self.distinct.composite_estimate()
        )
    }
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for Counted<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Counted::Small(v) => write!(f, "Small({} keys)", v.len()),
            Counted::Exact(m) => write!(f, "Exact({} keys)", m.len()),
            Counted::Sketch(s) => write!(f, "Sketch(~{:.0} keys)", s.distinct.composite_estimate()),
        }
    }
}

impl<K: Eq + Hash + Clone> Default for Counted<K> {
    fn default() -> Self {
        Counted::Small(smallvec::SmallVec::new())
    }
}

fn new_hll() -> HllSketch {
    // lg_k 14 is inside the valid range [4, 21]; this cannot fail.
    HllSketch::new(HLL_LG_K, HllType::Hll4).unwrap_or_else(|_| unreachable!("valid lg_k"))
}

fn new_heavy<K: Eq + Hash + Clone>() -> FrequentItemsSketch<K> {
    FrequentItemsSketch::new(HEAVY_MAP_SIZE).unwrap_or_else(|_| unreachable!("power of two"))
}

impl<K: Eq + Hash + Clone> Counted<K> {
    /// Adds `n` to key `k`; switches to sketches once more than `limit` keys are seen.
    #[inline]
    pub fn add(&mut self, k: K, n: u64, limit: usize) {
        match self {
            Counted::Small(v) => {
                if let Some(e) = v.iter_mut().find(|e| e.0 == k) {
                    e.1 = e.1.saturating_add(n);
                    return;
                }
                v.push((k, n));
                if v.len() > SMALL_KEYS.min(limit) {
                    let m: KeyedMap<K, u64> = v.drain(..).collect();
                    *self = Counted::Exact(m);
                    if let Counted::Exact(m) = self {
                        if m.len() > limit {
                            self.promote();
                        }
                    }
                }
            }
            Counted::Exact(m) => {
                let c = m.entry(k).or_insert(0);
                *c = c.saturating_add(n);
                if m.len() > limit {
                    self.promote();
                }
            }
            Counted::Sketch(s) => {
                s.distinct.update(&k);
                s.heavy.update_with_count(k, n);
            }
        }
    }

    fn promote(&mut self) {
        let entries: Vec<(K, u64)> = match self {
            Counted::Small(v) => v.drain(..).collect(),
            Counted::Exact(m) => m.drain().collect(),
            Counted::Sketch(_) => return,
        };
        let mut s = Sketches {
            distinct: new_hll(),
            heavy: new_heavy(),
        };
        for (k, n) in entries {
            s.distinct.update(&k);
            s.heavy.update_with_count(k, n);
        }
        *self = Counted::Sketch(Box::new(s));
    }

    pub fn is_exact(&self) -> bool {
        !matches!(self, Counted::Sketch(_))
    }

    /// Number of distinct keys: exact, or the order-independent HLL estimate (so the
    /// answer does not depend on the order events or partial aggregates arrived in).
    pub fn distinct(&self) -> u64 {
        match self {
            Counted::Small(v) => v.len() as u64,
            Counted::Exact(m) => m.len() as u64,
            Counted::Sketch(s) => s.distinct.composite_estimate().round() as u64,
        }
    }

    /// The `n` keys with the highest counts, highest first; ties broken by `order`.
    /// Exact while small; from the frequent-items sketch (lower-bound estimates, no
    /// false negatives among keys above the sketch error) once large.
    pub fn top(&self, n: usize, order: impl Fn(&K, &K) -> std::cmp::Ordering) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = match self {
            Counted::Small(v) => v.to_vec(),
            Counted::Exact(m) => m.iter().map(|(k, c)| (k.clone(), *c)).collect(),
            Counted::Sketch(s) => s
                .heavy
                .frequent_items(ErrorType::NoFalseNegatives)
                .into_iter()
                .map(|r| (r.item().clone(), r.estimate()))
                .collect(),
        };
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| order(&a.0, &b.0)));
        v.truncate(n);
        v
    }

    /// The largest single count (exact, or the sketch's estimate of the heaviest key).
    pub fn max_count(&self) -> u64 {
        match self {
            Counted::Small(v) => v.iter().map(|e| e.1).max().unwrap_or(0),
            Counted::Exact(m) => m.values().copied().max().unwrap_or(0),
            Counted::Sketch(s) => s
                .heavy
                .frequent_items(ErrorType::NoFalseNegatives)
                .iter()
                .map(|r| r.estimate())
                .max()
                .unwrap_or(0),
        }
    }

    /// Merges another partial count into this one. The result equals counting the
    /// union of both inputs: exactly while small, within the sketch bounds once large.
    pub fn merge(&mut self, other: &Counted<K>, limit: usize) {
        match other {
            Counted::Small(ov) => {
                for (k, n) in ov {
                    self.add(k.clone(), *n, limit);
                }
            }
            Counted::Exact(om) => {
                for (k, n) in om {
                    self.add(k.clone(), *n, limit);
                }
            }
            Counted::Sketch(os) => {
                self.promote();
                if let Counted::Sketch(s) = self {
                    let mut u =
                        HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid lg_k"));
                    u.update(&s.distinct);
                    u.update(&os.distinct);
                    s.distinct = u.to_sketch(HllType::Hll4);
                    s.heavy.merge(&os.heavy);
                }
            }
        }
    }

    /// Approximate heap bytes used (for the memory benchmark).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Counted::Small(v) => {
                if v.spilled() {
                    v.capacity() * std::mem::size_of::<(K, u64)>()
                } else {
                    0
                }
            }
            Counted::Exact(m) => m.capacity() * (std::mem::size_of::<(K, u64)>() + 1),
            Counted::Sketch(s) => s.distinct.estimated_size() + s.heavy.estimated_size(),
        }
    }
}

/// A distinct counter without per-key counts: an exact set of 64-bit key hashes while
/// small, a HyperLogLog sketch once it outgrows its limit. Used where only "how
/// many different" matters (targets, reporting sensors), at a fraction of the memory
/// of [`Counted`].
#[derive(Clone, Default)]
pub enum Distinct {
    #[default]
    Empty,
    Small(smallvec::SmallVec<[u64; 4]>),
    Exact(KeyedSet<u64>),
    Sketch(Box<HllSketch>),
}

impl std::fmt::Debug for Distinct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Distinct({})", self.distinct())
    }
}

/// Stable 64-bit hash of a key's bytes (xxh3), the same in every process.
pub fn key_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

impl Distinct {
    #[inline]
    pub fn add_hash(&mut self, h: u64, limit: usize) {
        match self {
            Distinct::Empty => {
                *self = Distinct::Small(smallvec::smallvec![h]);
                if limit == 0 {
                    self.make_sketch();
                }
            }
            Distinct::Small(v) => {
                if !v.contains(&h) {
                    v.push(h);
                    if v.len() > SMALL_KEYS.min(limit) {
                        let set: KeyedSet<u64> = v.iter().copied().collect();
                        *self = Distinct::Exact(set);
                        if self.distinct() as usize > limit {
                            self.make_sketch();
                        }
                    }
                }
            }
            Distinct::Exact(s) => {
                if s.insert(h) && s.len() > limit {
                    self.make_sketch();
                }
            }
            Distinct::Sketch(hll) => hll.update(h),
        }
    }

    fn make_sketch(&mut self) {
        let mut hll = new_hll();
        match self {
            Distinct::Empty | Distinct::Sketch(_) => return,
            Distinct::Small(v) => v.iter().for_each(|k| hll.update(k)),
            Distinct::Exact(s) => s.iter().for_each(|k| hll.update(k)),
        }
        *self = Distinct::Sketch(Box::new(hll));
    }

    pub fn is_exact(&self) -> bool {
        !matches!(self, Distinct::Sketch(_))
    }

    /// Exact count, or the order-independent HLL estimate.
    pub fn distinct(&self) -> u64 {
        match self {
            Distinct::Empty => 0,
            Distinct::Small(v) => v.len() as u64,
            Distinct::Exact(s) => s.len() as u64,
            Distinct::Sketch(h) => h.composite_estimate().round() as u64,
        }
    }

    /// Merges another partial count: equal to counting the union.
    pub fn merge(&mut self, other: &Distinct, limit: usize) {
        match other {
            Distinct::Empty => {}
            Distinct::Small(v) => {
                for h in v {
                    self.add_hash(*h, limit);
                }
            }
            Distinct::Exact(s) => {
                for h in s {
                    self.add_hash(*h, limit);
                }
            }
            Distinct::Sketch(oh) => {
                let mut u = HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid lg_k"));
                match self {
                    Distinct::Empty => {}
                    Distinct::Small(v) => {
                        for h in v.iter() {
                            u.update_value(h);
                        }
                    }
                    Distinct::Exact(s) => {
                        for h in s.iter() {
                            u.update_value(h);
                        }
                    }
                    Distinct::Sketch(h) => u.update(h),
                }
                u.update(oh);
                *self = Distinct::Sketch(Box::new(u.to_sketch(HllType::Hll4)));
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Distinct::Empty => 0,
            Distinct::Small(v) => {
                if v.spilled() {
                    v.capacity() * 8
                } else {
                    0
                }
            }
            Distinct::Exact(s) => s.capacity() * 9,
            Distinct::Sketch(h) => h.estimated_size(),
        }
    }
}

/// Merges many distinct counters into one: exact keys into one set while it stays
/// within the limit, every sketch into one HyperLogLog union. Equal to merging them
/// pairwise with [`Distinct::merge`], without building a union per pair (reading a
/// port's 30 days of cells merges 30 sketches).
pub struct DistinctUnion {
    exact: KeyedSet<u64>,
    union: Option<Box<HllUnion>>,
    limit: usize,
    /// The HLL8 register arrays added by their bytes (`codec`,
    /// [`DistinctUnion::add_encoded`]), merged into the union once at the end.
    pub(crate) arrays: Option<Box<crate::codec::Hll8Arrays>>,
}

impl DistinctUnion {
    pub fn new(limit: usize) -> DistinctUnion {
        DistinctUnion {
            exact: KeyedSet::default(),
            union: None,
            limit,
            arrays: None,
        }
    }

    fn union(&mut self) -> &mut HllUnion {
        let exact = &mut self.exact;
        self.union.get_or_insert_with(|| {
            let mut u = HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid lg_k"));
            for k in exact.drain() {
                u.update_value(k);
            }
            Box::new(u)
        })
    }

    /// Merges the arrays added by their bytes into the union, before anything
    /// else is added: the union then sees the counters in the order they came
    /// (its estimator depends on it), as if each had been added decoded.
    fn flush_arrays(&mut self) {
        if let Some(a) = self.arrays.take() {
            let h = a.into_sketch();
            self.union().update(&h);
        }
    }

    fn key(&mut self, k: u64) {
        self.flush_arrays();
        match &mut self.union {
            Some(u) => u.update_value(k),
            None => {
                if self.exact.insert(k) && self.exact.len() > self.limit {
                    self.union();
                }
            }
        }
    }

    pub fn add(&mut self, d: &Distinct) {
        match d {
            Distinct::Empty => {}
            Distinct::Small(v) => v.iter().for_each(|k| self.key(*k)),
            Distinct::Exact(s) => s.iter().for_each(|k| self.key(*k)),
            Distinct::Sketch(h) => {
                self.flush_arrays();
                self.union().update(h)
            }
        }
    }

    pub fn finish(mut self) -> Distinct {
        self.flush_arrays();
        match self.union {
            // HLL8: read once for its estimate, and quicker to make than HLL4.
            Some(u) => Distinct::Sketch(Box::new(u.to_sketch(HllType::Hll8))),
            None if self.exact.is_empty() => Distinct::Empty,
            None if self.exact.len() <= SMALL_KEYS => {
                Distinct::Small(self.exact.into_iter().collect())
            }
            None => Distinct::Exact(self.exact),
        }
    }
}

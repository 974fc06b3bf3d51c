//! Bytes of a partial window aggregate, so that aggregators in other processes can
//! store their part of a window and the detector can merge the parts: every
//! counter is written as it is (exact keys and counts, or the HyperLogLog and
//! frequent-items sketches in their Apache DataSketches images), so merging decoded
//! parts gives what merging the parts in memory gives.
//!
//! Hand-written because the format is ours and must stay stable across versions:
//! a version byte, LEB128 integers, the sketches' own serialisation, and an xxh3
//! checksum at the end so a damaged row is refused instead of merged. Decoding never
//! panics and never allocates more than the input can describe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::counted::HLL_LG_K;
use crate::keyed::{KeyedMap, KeyedSet};
use datasketches::codec::{SketchBytes, SketchSlice};
use datasketches::error::{Error as SketchError, ErrorKind};
use datasketches::frequencies::{FrequentItemValue, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use rustc_hash::FxHashMap;
use scanwatch_event::bytes::{put_var, ReadError, Reader};
use scanwatch_event::Protocol;

use crate::counted::Sketches;
use crate::{
    Cell, Counted, Distinct, PortSeen, SourceIp, Spread, Spreads, Window, WindowTotals, WitnessSet,
    Witnesses,
};

/// Format version of [`encode_window`]. Version 2 adds, after the cells, each
/// sensor's latest event time in the part (the centre's per-sensor progress,
/// docs/time.md); version 3 adds each cell's witnesses (which sensors saw each
/// source, `witness`); version 4 adds each source's spread (the ports it reached,
/// `spread`); version 5 writes, after a sampled cell's witness bound, which
/// ranking drew the sample (`sample_seed::ranking`: the deployment's seed); version
/// 6 writes the same after a capped spread's flag (which ranking chose its kept
/// ports). Versions 1 to 5 are still read (no times, no witnesses: their sources
/// count as seen by no known sensor, so none is corroborated; no spreads: nobody
/// in them is a sweeper; a version-4 sample was drawn by the address hash; under
/// a seed, a capped spread before version 6 is taken as drawn under another
/// ranking, so nothing is estimated from it). Version 7 writes each cell's lines
/// after its witnesses (events as given, each once: what its distinct counts are
/// held to); before it a cell's events stand in.
pub const FORMAT_VERSION: u8 = 7;

/// Each sensor's latest event time (ms) in a part, by sensor key.
pub type SensorTimes = Vec<(crate::SensorKey, i64)>;

/// Why bytes are not a partial window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partial window cannot be read: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

/// An address as both encodings write it: a family tag (4 or 6), then its octets.
fn ip_octets(ip: IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(a) => (4, a.octets().to_vec()),
        IpAddr::V6(a) => (6, a.octets().to_vec()),
    }
}

/// The octet count of a family tag.
fn ip_len(tag: u8) -> Option<usize> {
    match tag {
        4 => Some(4),
        6 => Some(16),
        _ => None,
    }
}

/// The address of exactly 4 or 16 octets.
fn ip_from(octets: &[u8]) -> Option<SourceIp> {
    if let Ok(b) = <[u8; 4]>::try_from(octets) {
        return Some(SourceIp(IpAddr::V4(Ipv4Addr::from(b))));
    }
    <[u8; 16]>::try_from(octets)
        .ok()
        .map(|b| SourceIp(IpAddr::V6(Ipv6Addr::from(b))))
}

impl FrequentItemValue for SourceIp {
    fn serialize_size(item: &Self) -> usize {
        1 + ip_octets(item.0).1.len()
    }

    fn serialize_value(&self, bytes: &mut SketchBytes) {
        let (tag, octets) = ip_octets(self.0);
        bytes.write_u8(tag);
        bytes.write(&octets);
    }

    fn deserialize_value(cursor: &mut SketchSlice<'_>) -> Result<Self, SketchError> {
        let bad = |what: &str| SketchError::new(ErrorKind::InvalidData, what.to_string());
        let tag = cursor
            .read_u8()
            .map_err(|_| bad("truncated address item"))?;
        let n = ip_len(tag).ok_or_else(|| bad("unknown address family"))?;
        let mut b = [0u8; 16];
        cursor
            .read_exact(&mut b[..n])
            .map_err(|_| bad("truncated address item"))?;
        ip_from(&b[..n]).ok_or_else(|| bad("unknown address family"))
    }
}

/// Keys of a [`Counted`] written in exact form.
trait Key: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Key for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.u64_le()?)
    }
}

impl Key for SourceIp {
    fn put(&self, out: &mut Vec<u8>) {
        let (tag, octets) = ip_octets(self.0);
        out.push(tag);
        out.extend_from_slice(&octets);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        let n = ip_len(tag).ok_or_else(|| bad(format!("unknown address family {tag}")))?;
        ip_from(r.take(n)?).ok_or_else(|| bad("address"))
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_var(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> DecodeError {
        bad(e.0)
    }
}

fn put_counted<K: Key + Clone + Ord + std::hash::Hash + FrequentItemValue>(
    out: &mut Vec<u8>,
    c: &Counted<K>,
) {
    // Exact keys in key order: equal counts give equal bytes, whatever order they
    // were added in and however the (seeded: `keyed`) table holds them.
    let exact = |out: &mut Vec<u8>, mut v: Vec<(&K, &u64)>| {
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.push(0);
        put_var(out, v.len() as u64);
        for (k, n) in v {
            k.put(out);
            put_var(out, *n);
        }
    };
    match c {
        Counted::Small(v) => exact(out, v.iter().map(|(k, n)| (k, n)).collect()),
        Counted::Exact(m) => exact(out, m.iter().collect()),
        Counted::Sketch(s) => {
            out.push(1);
            put_bytes(out, &s.distinct.serialize());
            put_bytes(out, &s.heavy.serialize());
        }
    }
}

fn get_counted<K: Key + Clone + Eq + std::hash::Hash + FrequentItemValue>(
    r: &mut Reader<'_>,
) -> Result<Counted<K>, DecodeError> {
    match r.u8()? {
        0 => {
            let n = r.count(2)?;
            let mut m: KeyedMap<K, u64> = KeyedMap::default();
            for _ in 0..n {
                let k = K::get(r)?;
                let c = r.var()?;
                if m.insert(k, c).is_some() {
                    return Err(bad("key written twice"));
                }
            }
            Ok(if n <= crate::counted::SMALL_KEYS {
                Counted::Small(m.into_iter().collect())
            } else {
                Counted::Exact(m)
            })
        }
        1 => {
            let distinct = checked_sketch(r.bytes()?)?;
            let heavy = FrequentItemsSketch::<K>::deserialize(r.bytes()?)
                .map_err(|e| bad(format!("frequent-items sketch: {e}")))?;
            Ok(Counted::Sketch(Box::new(Sketches { distinct, heavy })))
        }
        t => Err(bad(format!("unknown counter form {t}"))),
    }
}

fn put_distinct(out: &mut Vec<u8>, d: &Distinct) {
    // Keys in order, as `put_counted`.
    let exact = |out: &mut Vec<u8>, mut v: Vec<u64>| {
        v.sort_unstable();
        out.push(0);
        put_var(out, v.len() as u64);
        for h in v {
            out.extend_from_slice(&h.to_le_bytes());
        }
    };
    match d {
        Distinct::Empty => exact(out, Vec::new()),
        Distinct::Small(v) => exact(out, v.to_vec()),
        Distinct::Exact(s) => exact(out, s.iter().copied().collect()),
        Distinct::Sketch(h) => {
            out.push(1);
            put_bytes(out, &h.serialize());
        }
    }
}

fn get_distinct(r: &mut Reader<'_>) -> Result<Distinct, DecodeError> {
    match r.u8()? {
        0 => {
            let n = r.count(8)?;
            let mut s: KeyedSet<u64> = KeyedSet::default();
            for _ in 0..n {
                if !s.insert(r.u64_le()?) {
                    return Err(bad("key written twice"));
                }
            }
            Ok(match n {
                0 => Distinct::Empty,
                n if n <= crate::counted::SMALL_KEYS => Distinct::Small(s.into_iter().collect()),
                _ => Distinct::Exact(s),
            })
        }
        1 => Ok(Distinct::Sketch(Box::new(checked_sketch(r.bytes()?)?))),
        t => Err(bad(format!("unknown counter form {t}"))),
    }
}

/// Reads a distinct counter's sketch and refuses one this build would not make
/// or could not read back once written: another precision (only a forged or
/// damaged row has it: it would not merge like the others), or bytes the sketch
/// crate reads although they are inconsistent (a coupon count larger than its
/// coupons) and then writes as bytes it cannot read itself (found by the fuzz
/// targets `distinct_counter` and `partial_window`).
fn checked_sketch(bytes: &[u8]) -> Result<HllSketch, DecodeError> {
    // An HLL4 register is the image's current minimum plus a nibble of at most
    // 14: a minimum past 49 makes registers of 64 or more (below).
    let hll4 = |mode: u8| mode & 3 == 2 && (mode >> 2) & 3 == 0;
    if bytes.len() >= HLL_HEADER && bytes[0] == HLL_PREINTS && hll4(bytes[7]) && bytes[6] > 49 {
        return Err(bad(REGISTER_OUT_OF_RANGE));
    }
    let h = HllSketch::deserialize(bytes).map_err(|e| bad(format!("distinct sketch: {e}")))?;
    if h.lg_config_k() != HLL_LG_K {
        return Err(bad(format!(
            "distinct sketch of lg k {}, this build makes {HLL_LG_K}",
            h.lg_config_k()
        )));
    }
    let image = h.serialize();
    if let Err(e) = HllSketch::deserialize(&image) {
        return Err(bad(format!("distinct sketch inconsistent: {e}")));
    }
    if let Some(registers) = hll8_registers(&image) {
        check_array(&image, registers)?;
    }
    Ok(h)
}

const REGISTER_OUT_OF_RANGE: &str = "distinct sketch: a register out of range";

/// What the sketch crate does not check of an HLL8 array image and relies on:
/// registers below 64 (it reads any byte as one, and a value of 64 or more
/// overflows its estimator's sums once the sketch is merged: found by the
/// `distinct_counter` fuzz target), a zero count that is the registers' (a union
/// skips a sketch whose count says all are zero), no auxiliary entries.
fn check_array(image: &[u8], registers: &[u8]) -> Result<(), DecodeError> {
    // One pass for the largest register and the zeros, counted per chunk in a
    // byte (the compiler keeps it in vector registers; a count per register in
    // a usize made this 7 % of the desk's 30-day `topports`, `perf`).
    let (mut largest, mut zeros) = (0u8, 0usize);
    for chunk in registers.chunks(128) {
        let mut z = 0u8;
        for &v in chunk {
            largest = largest.max(v);
            z += u8::from(v == 0);
        }
        zeros += usize::from(z);
    }
    if largest >= 64 {
        return Err(bad(REGISTER_OUT_OF_RANGE));
    }
    let word =
        |at: usize| u32::from_le_bytes([image[at], image[at + 1], image[at + 2], image[at + 3]]);
    if word(32) as usize != zeros || word(36) != 0 {
        return Err(bad(
            "distinct sketch: HLL8 counts inconsistent with its registers",
        ));
    }
    Ok(())
}

/// The image of an HLL8 sketch in array mode, in the Apache DataSketches HLL
/// format (the layout is the format's, shared by its implementations): an 8-byte
/// header (preamble ints, serial version, family, lg k, unused, flags, cur min,
/// mode), HIP accumulator, kxq0 and kxq1 (f64), the zero count and the auxiliary
/// count (u32), then one byte per register.
const HLL_HEADER: usize = 8;
const HLL_PREAMBLE: usize = 40;
const HLL_PREINTS: u8 = 10;
const HLL_FLAGS: usize = 5;
const HLL_OUT_OF_ORDER: u8 = 16;
/// Mode byte: current mode HLL (2) in bits 0-1, target HLL8 (2) in bits 2-3.
const HLL8_ARRAY_MODE: u8 = 2 | (2 << 2);
const HLL_REGISTERS: usize = 1 << HLL_LG_K;

/// The register arrays of HLL8 sketches added to a [`DistinctUnion`] by their
/// bytes: the largest value per register. Hand-written because the sketch
/// crate's union recomputes its estimator's sums over every register after each
/// merge (16,384 of them, a division each): merging a port's 30 days of day cells
/// that way was about half of the desk's 30-day `topports`. Here a merge is a
/// maximum per register, and the sums are made once, when the result is read.
pub(crate) struct Hll8Arrays {
    /// The first array as decoded (checked, as [`decode_distinct`] does): it
    /// stands alone when no other comes, as the union would keep it.
    first: HllSketch,
    registers: Box<[u8]>,
    merged: usize,
}

impl Hll8Arrays {
    /// The merged sketch: the first alone, or the registers' maxima with the
    /// composite estimator (out of order, as a union of several is).
    pub(crate) fn into_sketch(self) -> HllSketch {
        if self.merged == 1 {
            return self.first;
        }
        let (mut kxq0, mut kxq1, mut zeros) = (0.0f64, 0.0f64, 0u32);
        // In register order, as the sketch crate sums them.
        for &v in self.registers.iter() {
            if v == 0 {
                zeros += 1;
                kxq0 += 1.0;
            } else if v < 32 {
                kxq0 += 1.0 / (1u64 << v) as f64;
            } else {
                kxq1 += 1.0 / (1u64 << v) as f64;
            }
        }
        let mut image = Vec::with_capacity(HLL_PREAMBLE + HLL_REGISTERS);
        image.extend_from_slice(&[
            HLL_PREINTS,
            1,
            7,
            HLL_LG_K,
            0,
            HLL_OUT_OF_ORDER,
            0,
            HLL8_ARRAY_MODE,
        ]);
        image.extend_from_slice(&0f64.to_le_bytes());
        image.extend_from_slice(&kxq0.to_le_bytes());
        image.extend_from_slice(&kxq1.to_le_bytes());
        image.extend_from_slice(&zeros.to_le_bytes());
        image.extend_from_slice(&0u32.to_le_bytes());
        image.extend_from_slice(&self.registers);
        // The image is made here from a checked header and registers below 64.
        HllSketch::deserialize(&image).unwrap_or(self.first)
    }
}

/// The registers of `bytes` when they are an HLL8 array image of this build's lg k
/// (`None`: another form, read by [`decode_distinct`]).
fn hll8_registers(bytes: &[u8]) -> Option<&[u8]> {
    // Serial version 1, family HLL (7), no flag but "out of order" (not empty,
    // compact or read-only), current minimum 0.
    let ok = bytes.len() == HLL_PREAMBLE + HLL_REGISTERS
        && bytes[..5] == [HLL_PREINTS, 1, 7, HLL_LG_K, 0]
        && bytes[HLL_FLAGS] & !HLL_OUT_OF_ORDER == 0
        && bytes[6] == 0
        && bytes[HLL_HEADER - 1] == HLL8_ARRAY_MODE;
    ok.then(|| &bytes[HLL_PREAMBLE..])
}

impl crate::DistinctUnion {
    /// Adds a counter from its bytes ([`encode_distinct`]): what
    /// `add(&decode_distinct(bytes)?)` does, with HLL8 arrays merged register by
    /// register from the bytes (each checked as `decode_distinct` checks an
    /// array; the first also decoded).
    pub fn add_encoded(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let Some(regs) = bytes
            .split_first()
            .filter(|(tag, _)| **tag == 1)
            .and_then(|(_, image)| hll8_registers(image))
        else {
            self.add(&decode_distinct(bytes)?);
            return Ok(());
        };
        let image = &bytes[1..];
        check_array(image, regs)?;
        match &mut self.arrays {
            None => {
                let first = checked_sketch(image)?;
                self.arrays = Some(Box::new(Hll8Arrays {
                    first,
                    registers: regs.into(),
                    merged: 1,
                }));
            }
            Some(a) => {
                for (m, v) in a.registers.iter_mut().zip(regs) {
                    *m = (*m).max(*v);
                }
                a.merged += 1;
            }
        }
        Ok(())
    }
}

fn put_witnesses(out: &mut Vec<u8>, w: &Witnesses) {
    let entries = w.entries();
    put_var(out, entries.len() as u64);
    for (h, s) in &entries {
        out.extend_from_slice(&h.to_le_bytes());
        out.push(s.len() as u8);
        for k in s.keys() {
            out.extend_from_slice(&k.to_le_bytes());
        }
    }
    let bound = w.bound();
    out.extend_from_slice(&bound.to_le_bytes());
    if bound != u64::MAX {
        put_ranked_by(out, w.foreign());
    }
}

/// Writes which ranking drew a sample: this process's, or for a foreign sample
/// one that is not this one (`ranking ^ 2` differs from it), so that it reads
/// back foreign.
fn put_ranked_by(out: &mut Vec<u8>, foreign: bool) {
    let ranking = crate::sample_seed::ranking();
    let ranked_by = if foreign { ranking ^ 2 } else { ranking };
    out.extend_from_slice(&ranked_by.to_le_bytes());
}

/// `v`: the format version (before 5, a sample was drawn by the address hash).
fn get_witnesses(r: &mut Reader<'_>, v: u8) -> Result<Witnesses, DecodeError> {
    let n = r.count(17)?;
    if n > crate::WITNESS_SOURCES {
        return Err(bad("more witnessed sources than a cell keeps"));
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let h = r.u64_le()?;
        let len = usize::from(r.u8()?);
        if len == 0 || len > crate::WITNESS_CAP {
            return Err(bad(format!("witness set of {len} sensors")));
        }
        let mut s = WitnessSet::default();
        for _ in 0..len {
            s.insert(r.u64_le()?);
        }
        entries.push((h, s));
    }
    let bound = r.u64_le()?;
    let ranked_by = if bound != u64::MAX && v >= 5 {
        r.u64_le()?
    } else {
        0
    };
    let w = Witnesses::from_parts(entries, bound, ranked_by);
    // A sample keeps its sources of smallest rank: one that kept none would cut
    // every other part's sample away when merged.
    if w.sampled() && w.entries().is_empty() {
        return Err(bad("a sampled witness set keeps no source"));
    }
    Ok(w)
}

fn put_spreads(out: &mut Vec<u8>, s: &Spreads) {
    let mut v: Vec<(&u64, &Spread)> = s.iter().collect();
    v.sort_unstable_by_key(|(h, _)| **h);
    put_var(out, v.len() as u64);
    for (h, sp) in v {
        out.extend_from_slice(&h.to_le_bytes());
        SourceIp(sp.ip).put(out);
        put_var(out, sp.events);
        out.push(u8::from(sp.capped));
        if sp.capped {
            put_ranked_by(out, sp.foreign);
        }
        let mut ports: Vec<&PortSeen> = sp.ports().collect();
        ports.sort_unstable_by_key(|p| p.key);
        put_var(out, ports.len() as u64);
        for p in ports {
            out.extend_from_slice(&p.key.to_le_bytes());
            out.extend_from_slice(&p.sensor.to_le_bytes());
            put_var(out, u64::from(p.events));
            out.push(u8::from(p.multi));
        }
    }
}

/// `v`: the format version (before 6, a capped spread's ranking is unknown).
fn get_spreads(r: &mut Reader<'_>, v: u8) -> Result<Spreads, DecodeError> {
    let n = r.count(15)?;
    let mut out = Spreads::default();
    for _ in 0..n {
        let h = r.u64_le()?;
        let ip = SourceIp::get(r)?.0;
        if crate::ip_hash(ip) != h {
            return Err(bad("spread keyed by the wrong address hash"));
        }
        let mut sp = Spread::new(ip);
        sp.events = r.var()?;
        sp.capped = match r.u8()? {
            0 => false,
            1 => true,
            t => return Err(bad(format!("spread cap flag {t}"))),
        };
        if sp.capped {
            let ranked_by = if v >= 6 { r.u64_le()? } else { 0 };
            sp.foreign = ranked_by != crate::sample_seed::ranking();
        }
        let ports = r.count(10)?;
        if ports > crate::SPREAD_CAP {
            return Err(bad("more ports than a spread keeps"));
        }
        for _ in 0..ports {
            let key = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| bad("truncated"))?);
            let sensor = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| bad("truncated"))?);
            let events = u32::try_from(r.var()?).map_err(|_| bad("port events too large"))?;
            let multi = match r.u8()? {
                0 => false,
                1 => true,
                t => return Err(bad(format!("spread witness flag {t}"))),
            };
            sp.insert(PortSeen {
                key,
                sensor,
                events,
                multi,
            });
        }
        out.insert_spread(h, sp);
    }
    Ok(out)
}

/// The bytes of one distinct counter alone (the store's port cells and source
/// days, millions of rows, most holding one key): exact keys sorted and written as
/// varint deltas (a small key such as an IPv4 address or a row id takes a few
/// bytes), or the sketch. No version byte or checksum: the caller's row carries it.
pub fn encode_distinct(d: &Distinct) -> Vec<u8> {
    let mut out = Vec::new();
    encode_distinct_into(d, &mut out);
    out
}

/// [`encode_distinct`] appended to `out`: a caller writing many counters (the
/// store's counting, three a cell) reuses one buffer instead of allocating per
/// counter; the few keys of a small counter are sorted without a heap allocation.
pub fn encode_distinct_into(d: &Distinct, out: &mut Vec<u8>) {
    let mut keys: smallvec::SmallVec<[u64; 8]> = match d {
        Distinct::Empty => smallvec::SmallVec::new(),
        Distinct::Small(v) => v.iter().copied().collect(),
        Distinct::Exact(s) => s.iter().copied().collect(),
        Distinct::Sketch(h) => {
            // As HLL8, a byte per register: twice the bytes of HLL4, and a union
            // of many (a port's 30 days) reads them several times faster. A
            // sketch read from these bytes stays HLL8, so only the first write
            // converts.
            out.push(1);
            if h.target_type() == HllType::Hll8 {
                out.extend_from_slice(&h.serialize());
            } else {
                let mut u = HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid lg_k"));
                u.update(h);
                out.extend_from_slice(&u.to_sketch(HllType::Hll8).serialize());
            }
            return;
        }
    };
    keys.sort_unstable();
    out.reserve(2 + keys.len() * 5);
    out.push(0);
    put_var(out, keys.len() as u64);
    let mut last = 0u64;
    for (i, k) in keys.into_iter().enumerate() {
        put_var(out, if i == 0 { k } else { k - last });
        last = k;
    }
}

/// Reads bytes made by [`encode_distinct`]: keys strictly increasing, nothing
/// after them.
pub fn decode_distinct(bytes: &[u8]) -> Result<Distinct, DecodeError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        0 => {
            let n = r.count(1)?;
            let mut keys: Vec<u64> = Vec::with_capacity(n);
            let mut last = 0u64;
            for i in 0..n {
                let v = r.var()?;
                let k = if i == 0 {
                    v
                } else if v == 0 {
                    return Err(bad("key written twice"));
                } else {
                    last.checked_add(v).ok_or_else(|| bad("key out of range"))?
                };
                keys.push(k);
                last = k;
            }
            if !r.rest.is_empty() {
                return Err(bad("trailing bytes after a distinct counter"));
            }
            Ok(match n {
                0 => Distinct::Empty,
                n if n <= crate::counted::SMALL_KEYS => Distinct::Small(keys.into_iter().collect()),
                _ => Distinct::Exact(keys.into_iter().collect()),
            })
        }
        1 => {
            let h = checked_sketch(r.rest)?;
            // `encode_distinct` writes a sketch not yet HLL8 through a union, which
            // can carry an inconsistency too: checked on those bytes (a stored cell
            // is HLL8 after its first write, so this costs nothing on queries).
            if h.target_type() != HllType::Hll8 {
                let mut u = HllUnion::new(HLL_LG_K).unwrap_or_else(|_| unreachable!("valid lg_k"));
                u.update(&h);
                if let Err(e) = HllSketch::deserialize(&u.to_sketch(HllType::Hll8).serialize()) {
                    return Err(bad(format!("distinct sketch inconsistent: {e}")));
                }
            }
            Ok(Distinct::Sketch(Box::new(h)))
        }
        t => Err(bad(format!("unknown counter form {t}"))),
    }
}

/// The bytes of a partial window (cells in protocol and port order, so equal
/// windows give equal bytes while exact), with no per-sensor times.
pub fn encode_window(w: &Window) -> Vec<u8> {
    encode_partial(w, &[])
}

/// The bytes of a partial window and each sensor's latest event time in it
/// (sorted by sensor key, so equal parts give equal bytes).
pub fn encode_partial(w: &Window, sensor_times: &[(crate::SensorKey, i64)]) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    put_var(&mut out, w.totals.all_events);
    put_var(&mut out, w.totals.port_events);
    put_var(&mut out, w.totals.icmp_events);
    put_distinct(&mut out, &w.totals.sensors);
    let mut keys: Vec<&(Protocol, u16)> = w.cells.keys().collect();
    keys.sort();
    put_var(&mut out, keys.len() as u64);
    for k in keys {
        let c = &w.cells[k];
        out.push(k.0.number());
        out.extend_from_slice(&k.1.to_le_bytes());
        put_var(&mut out, c.events);
        put_counted(&mut out, &c.sources);
        put_distinct(&mut out, &c.targets);
        put_counted(&mut out, &c.sensors);
        put_witnesses(&mut out, &c.witnesses);
        put_var(&mut out, c.lines);
    }
    let mut times = sensor_times.to_vec();
    times.sort_unstable();
    put_var(&mut out, times.len() as u64);
    for (k, t) in times {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
    }
    put_spreads(&mut out, &w.spreads);
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Reads bytes made by [`encode_window`]; checks the version and the checksum.
pub fn decode_window(bytes: &[u8]) -> Result<Window, DecodeError> {
    decode_partial(bytes).map(|(w, _)| w)
}

/// Reads bytes made by [`encode_partial`] (or [`encode_window`]): the window and
/// each sensor's latest event time in it (empty for version 1 bytes).
pub fn decode_partial(bytes: &[u8]) -> Result<(Window, SensorTimes), DecodeError> {
    if bytes.len() < 9 {
        return Err(bad("too short"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| bad("too short"))?);
    if xxhash_rust::xxh3::xxh3_64(body) != sum {
        return Err(bad("checksum mismatch"));
    }
    decode_partial_body(body)
}

/// Decoding without the checksum (what the fuzz target drives, since random bytes
/// would almost never pass the checksum).
pub fn decode_body(body: &[u8]) -> Result<Window, DecodeError> {
    decode_partial_body(body).map(|(w, _)| w)
}

/// [`decode_body`] with the per-sensor times.
pub fn decode_partial_body(body: &[u8]) -> Result<(Window, SensorTimes), DecodeError> {
    let mut r = Reader::new(body);
    let v = r.u8()?;
    if !(1..=FORMAT_VERSION).contains(&v) {
        return Err(bad(format!(
            "format version {v}, this build reads {FORMAT_VERSION}"
        )));
    }
    let totals = WindowTotals {
        all_events: r.var()?,
        port_events: r.var()?,
        icmp_events: r.var()?,
        sensors: get_distinct(&mut r)?,
    };
    let n = r.count(6)?;
    let mut cells = FxHashMap::default();
    for _ in 0..n {
        let proto = Protocol::from_number(r.u8()?);
        let port = u16::from_le_bytes(r.take(2)?.try_into().map_err(|_| bad("truncated"))?);
        let events = r.var()?;
        let mut cell = Cell {
            events,
            lines: events,
            sources: get_counted(&mut r)?,
            targets: get_distinct(&mut r)?,
            sensors: get_counted(&mut r)?,
            witnesses: if v >= 3 {
                get_witnesses(&mut r, v)?
            } else {
                Witnesses::default()
            },
        };
        if v >= 7 {
            cell.lines = r.var()?;
        }
        if cells.insert((proto, port), cell).is_some() {
            return Err(bad("cell written twice"));
        }
    }
    let mut times = SensorTimes::new();
    if v >= 2 {
        let n = r.count(16)?;
        for _ in 0..n {
            let k = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| bad("truncated"))?);
            let t = i64::from_le_bytes(r.take(8)?.try_into().map_err(|_| bad("truncated"))?);
            times.push((k, t));
        }
    }
    let spreads = if v >= 4 {
        get_spreads(&mut r, v)?
    } else {
        Spreads::default()
    };
    if !r.rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok((
        Window {
            cells,
            totals,
            spreads,
        },
        times,
    ))
}

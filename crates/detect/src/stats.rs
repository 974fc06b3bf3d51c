//! Median and MAD over a sliding window of counts, where windows in which a port was
//! silent are implicit zeros. Kept as a sorted vector so each window costs one
//! insertion, one removal and a linear pass.

/// A sorted multiset of the non-zero history values of one metric.
#[derive(Clone, Debug, Default)]
pub struct SortedWindow {
    values: Vec<u64>,
}

impl SortedWindow {
    /// From values in any order.
    pub fn from_values(mut values: Vec<u64>) -> SortedWindow {
        values.sort_unstable();
        SortedWindow { values }
    }

    pub fn insert(&mut self, v: u64) {
        let i = self.values.partition_point(|&x| x < v);
        self.values.insert(i, v);
    }

    pub fn remove(&mut self, v: u64) {
        let i = self.values.partition_point(|&x| x < v);
        if self.values.get(i) == Some(&v) {
            self.values.remove(i);
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The k-th smallest (0-based) of `zeros` zeros followed by the stored values.
    fn kth(&self, zeros: usize, k: usize) -> f64 {
        if k < zeros {
            0.0
        } else {
            self.values.get(k - zeros).copied().unwrap_or(0) as f64
        }
    }

    /// Median and median absolute deviation of the multiset plus `zeros` zeros.
    /// Both are 0 for an empty multiset. Medians of even counts are the mean of the
    /// two middle values.
    pub fn median_mad_with_zeros(&self, zeros: usize) -> (f64, f64) {
        let n = zeros + self.values.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let median = if n % 2 == 1 {
            self.kth(zeros, n / 2)
        } else {
            (self.kth(zeros, n / 2 - 1) + self.kth(zeros, n / 2)) / 2.0
        };
        // Deviations from the median, in increasing order, come from walking outwards
        // from the median's position in the sorted sequence (two pointers).
        let at = |i: usize| self.kth(zeros, i);
        let mut hi = (0..n).find(|&i| at(i) >= median).unwrap_or(n);
        let mut lo = hi; // elements [lo, hi) consumed; lo moves down, hi moves up
        let need = if n % 2 == 1 {
            vec![n / 2]
        } else {
            vec![n / 2 - 1, n / 2]
        };
        let mut picked = Vec::with_capacity(2);
        let mut k = 0;
        while picked.len() < need.len() {
            let down = if lo > 0 {
                Some(median - at(lo - 1))
            } else {
                None
            };
            let up = if hi < n { Some(at(hi) - median) } else { None };
            let d = match (down, up) {
                (Some(d), Some(u)) if d <= u => {
                    lo -= 1;
                    d
                }
                (_, Some(u)) => {
                    hi += 1;
                    u
                }
                (Some(d), None) => {
                    lo -= 1;
                    d
                }
                (None, None) => break,
            };
            if need.contains(&k) {
                picked.push(d);
            }
            k += 1;
        }
        let mad = if picked.is_empty() {
            0.0
        } else {
            picked.iter().sum::<f64>() / picked.len() as f64
        };
        (median, mad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[u64], zeros: usize) -> (f64, f64) {
        let mut v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        v.extend(std::iter::repeat_n(0.0, zeros));
        if v.is_empty() {
            return (0.0, 0.0);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        let m = med(&mut v);
        let mut d: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
        (m, med(&mut d))
    }

    #[test]
    fn matches_naive_median_and_mad() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for case in 0..2000 {
            let len = case % 23;
            let zeros = (case / 7) % 11;
            let mut s = SortedWindow::default();
            let mut vals = Vec::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let v = 1 + seed % 50;
                vals.push(v);
                s.insert(v);
            }
            assert_eq!(
                s.median_mad_with_zeros(zeros),
                naive(&vals, zeros),
                "{vals:?} zeros {zeros}"
            );
            if let Some(&v) = vals.first() {
                s.remove(v);
                vals.remove(0);
                assert_eq!(s.median_mad_with_zeros(zeros), naive(&vals, zeros));
            }
        }
    }
}

//! Varints and a checked reader over a byte slice: the pieces every binary codec of
//! scanwatch shares (event blocks here, partial windows and distinct counters in
//! `scanwatch-aggregate`). Hand-written: a dozen lines each, and a codec crate
//! would bring a format of its own.

/// Why bytes could not be read (the codec adds what it was reading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub &'static str);

/// Appends `v` as a little-endian base-128 varint (1 to 10 bytes).
pub fn put_var(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads from the front of a slice; every read checks what is left.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    /// What has not been read yet.
    pub rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { rest: b }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.rest.len() < n {
            return Err(ReadError("truncated"));
        }
        let (h, t) = self.rest.split_at(n);
        self.rest = t;
        Ok(h)
    }

    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16_le(&mut self) -> Result<u16, ReadError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u64_le(&mut self) -> Result<u64, ReadError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| ReadError("truncated"))?;
        Ok(u64::from_le_bytes(b))
    }

    /// A varint written by [`put_var`].
    pub fn var(&mut self) -> Result<u64, ReadError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(ReadError("integer too large"));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ReadError("integer too long"))
    }

    /// A count of items, each at least `min_item` bytes: refused when the rest of
    /// the input cannot hold that many (no allocation from a forged count).
    pub fn count(&mut self, min_item: usize) -> Result<usize, ReadError> {
        let n = usize::try_from(self.var()?).map_err(|_| ReadError("count too large"))?;
        if n.saturating_mul(min_item.max(1)) > self.rest.len() {
            return Err(ReadError("count larger than the data"));
        }
        Ok(n)
    }

    /// Bytes written with their length as a varint before them.
    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let n = self.count(1)?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_forged_ones_are_refused() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_var(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.var(), Ok(v));
            assert!(r.rest.is_empty());
        }
        assert_eq!(
            Reader::new(&[0x80; 11]).var(),
            Err(ReadError("integer too long"))
        );
        assert_eq!(
            Reader::new(&[0xff; 10]).var(),
            Err(ReadError("integer too large"))
        );
        assert_eq!(
            Reader::new(&[5, 1]).count(1),
            Err(ReadError("count larger than the data"))
        );
        assert_eq!(Reader::new(&[0x80]).var(), Err(ReadError("truncated")));
    }
}

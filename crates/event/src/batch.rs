//! A batch as the centre reads it: the body of `POST /api/v1/events`, decompressed
//! per its `Content-Encoding` and never beyond a bound, then one [`WireEvent`] a
//! line, the first bad line refusing the whole batch. The collector reads sensors'
//! bodies with it and the bus its messages' lines (after their header line): one
//! reader for both, fuzzed as one (`fuzz/fuzz_targets/wire_batch.rs`).

use std::borrow::Cow;
use std::io::Read;

use thiserror::Error;

use crate::{Event, WireError, WireEvent};

/// A body's `Content-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// From the header's value, in any case (no header: identity); `None` when it
    /// is not one of these.
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("identity") => Some(Encoding::Identity),
            Some("gzip") => Some(Encoding::Gzip),
            Some("zstd") => Some(Encoding::Zstd),
            Some(_) => None,
        }
    }
}

/// Why a body does not decompress.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("invalid {encoding} body: {reason}")]
    Invalid {
        encoding: &'static str,
        reason: String,
    },
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge { limit: usize },
}

/// The body's bytes, decompressed: at most `limit` of them (a compressed body
/// that would give more is refused after `limit + 1`, so a small body cannot make
/// the centre hold a large output). An identity body is taken as it is, borrowed
/// (its size was bounded as it was read); a gzip or zstd body is read to its last
/// member or frame. The zstd decoder's window, which a frame's header
/// names, is not allocated up front by `ruzstd` (each frame has a new decoder): it
/// holds what it has produced, which the bound caps (about `limit` and a block).
pub fn decompress(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<Cow<'_, [u8]>, BodyError> {
    let invalid = |encoding: &'static str, e: &dyn std::fmt::Display| BodyError::Invalid {
        encoding,
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    // Reads `r` on into `out`: `Ok(false)` once past the bound.
    let mut read = |r: &mut dyn Read, name: &'static str| -> Result<bool, BodyError> {
        let room = (limit + 1 - out.len()) as u64;
        r.take(room)
            .read_to_end(&mut out)
            .map_err(|e| invalid(name, &e))?;
        Ok(out.len() <= limit)
    };
    let within = match encoding {
        Encoding::Identity => return Ok(Cow::Borrowed(body)),
        // Every member of the body (`MultiGzDecoder`).
        Encoding::Gzip => read(&mut flate2::read::MultiGzDecoder::new(body), "gzip")?,
        // Every frame of the body: `ruzstd` reads one and then ends, so the frames
        // are read one after another from what is left (a body may be several,
        // RFC 8878); bytes after a frame that are not one refuse the body.
        Encoding::Zstd => {
            let mut rest = body;
            loop {
                let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                    .map_err(|e| invalid("zstd", &e))?;
                if !read(&mut frame, "zstd")? || rest.is_empty() {
                    break out.len() <= limit;
                }
            }
        }
    };
    if !within {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

/// Why a batch's lines are refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    /// Line `line` (from 1) is not a valid event.
    #[error("line {line}: {error}")]
    Line { line: usize, error: WireError },
    #[error("more than {max} events in one batch")]
    TooMany { max: usize },
}

/// Reads `text` one event a line (blank lines skipped): `each` gets the line's
/// number (from 1), the line as read and its event. The first bad line, or an
/// event past `max_events`, refuses the batch (what `each` was given before is
/// the caller's to drop).
pub fn read_lines<'a>(
    text: &'a str,
    max_events: usize,
    mut each: impl FnMut(usize, WireEvent<'a>, Event),
) -> Result<(), BatchError> {
    let mut n = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |error| BatchError::Line { line: i + 1, error };
        let w = WireEvent::parse_line(line).map_err(bad)?;
        let e = w.to_event().map_err(bad)?;
        n += 1;
        if n > max_events {
            return Err(BatchError::TooMany { max: max_events });
        }
        each(i + 1, w, e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LINE: &str = r#"{"time":"2026-11-26T10:40:00Z","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.1","dst_port":1025}"#;

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn encodings_are_named_in_any_case() {
        for (v, want) in [
            (None, Some(Encoding::Identity)),
            (Some("identity"), Some(Encoding::Identity)),
            (Some("GZIP"), Some(Encoding::Gzip)),
            (Some("zstd"), Some(Encoding::Zstd)),
            (Some("br"), None),
            (Some(""), None),
        ] {
            assert_eq!(Encoding::from_header(v), want, "{v:?}");
        }
    }

    #[test]
    fn a_body_decompresses_up_to_its_bound_and_no_further() {
        let text = format!("{LINE}\n").repeat(100);
        let z = gzip(text.as_bytes());
        assert_eq!(
            decompress(Encoding::Gzip, &z, text.len()).unwrap(),
            text.as_bytes()
        );
        assert_eq!(
            decompress(Encoding::Gzip, &z, text.len() - 1),
            Err(BodyError::TooLarge {
                limit: text.len() - 1
            })
        );
        let e = decompress(Encoding::Gzip, b"not gzip", 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("invalid gzip body: "), "{e}");
        // A zstd body of several frames is read to its end, within the bound; bytes
        // after a frame that are not one refuse it.
        let zstd = |t: &str| {
            ruzstd::encoding::compress_to_vec(
                t.as_bytes(),
                ruzstd::encoding::CompressionLevel::Fastest,
            )
        };
        let two = [zstd(&text), zstd("second\n")].concat();
        let both = format!("{text}second\n");
        assert_eq!(
            decompress(Encoding::Zstd, &two, both.len()).unwrap(),
            both.as_bytes()
        );
        assert_eq!(
            decompress(Encoding::Zstd, &two, both.len() - 1),
            Err(BodyError::TooLarge {
                limit: both.len() - 1
            })
        );
        let trailing = [zstd(&text), b"junk".to_vec()].concat();
        let e = decompress(Encoding::Zstd, &trailing, 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("invalid zstd body: "), "{e}");
        let e = decompress(Encoding::Zstd, b"not zstd", 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("invalid zstd body: "), "{e}");
        // An identity body is the request's bytes, not a copy.
        let body = b"as is";
        match decompress(Encoding::Identity, body, 1).unwrap() {
            Cow::Borrowed(b) => assert!(std::ptr::eq(b, body.as_slice())),
            Cow::Owned(_) => panic!("an identity body copied"),
        }
    }

    #[test]
    fn lines_are_read_until_the_first_bad_one_or_the_bound() {
        let mut seen = Vec::new();
        let text = format!("{LINE}\n\n  \n{LINE}\r\n");
        read_lines(&text, 2, |n, _, e| seen.push((n, e.dst_port))).unwrap();
        assert_eq!(seen, vec![(1, Some(1025)), (4, Some(1025))]);
        assert_eq!(
            read_lines(&text, 1, |_, _, _| {}),
            Err(BatchError::TooMany { max: 1 })
        );
        let bad = format!("{LINE}\n{{\"time\":\"yesterday\"}}\n{LINE}");
        let e = read_lines(&bad, 10, |_, _, _| {}).unwrap_err();
        assert!(matches!(e, BatchError::Line { line: 2, .. }), "{e:?}");
        assert!(e.to_string().starts_with("line 2: "), "{e}");
    }
}

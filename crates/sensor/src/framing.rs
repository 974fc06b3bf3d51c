//! Syslog over a byte stream (RFC 6587): each message is either octet-counted
//! (`LEN SP MSG`, 3.4.1) or ends at a line feed (3.4.2). Std only and free of
//! sockets, so the fuzz target compiles this file on its own
//! (`fuzz/fuzz_targets/syslog_frames.rs`). A reader that times out (a socket with a
//! read timeout) is read again until `stop` says otherwise.

use std::io::{BufRead, ErrorKind};

/// The longest message taken (RFC 5425 asks receivers for at least 8 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What reading one frame gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A message (its bytes, without the framing or the line feed).
    Message(Vec<u8>),
    /// The stream ended cleanly between frames.
    End,
    /// A bad frame (a length that is not a number, over [`MAX_MESSAGE`], or a
    /// stream cut inside a counted frame), an I/O error, or stop: give up the
    /// connection.
    Bad,
}

fn is_tick(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Reads the next frame.
pub fn next_frame<R: BufRead>(r: &mut R, stop: &dyn Fn() -> bool) -> Frame {
    let first = loop {
        if stop() {
            return Frame::Bad;
        }
        match r.fill_buf() {
            Ok([]) => return Frame::End,
            Ok(b) => break b[0],
            Err(e) if is_tick(&e) => continue,
            Err(_) => return Frame::Bad,
        }
    };
    let mut out = Vec::new();
    if first.is_ascii_digit() {
        let mut digits = Vec::new();
        if !until(r, b' ', &mut digits, 7, stop) {
            return Frame::Bad;
        }
        let Some(len) = std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|n| *n <= MAX_MESSAGE)
        else {
            return Frame::Bad;
        };
        out.resize(len, 0);
        let mut got = 0;
        while got < len {
            if stop() {
                return Frame::Bad;
            }
            match r.read(&mut out[got..]) {
                Ok(0) => return Frame::Bad,
                Ok(n) => got += n,
                Err(e) if is_tick(&e) => continue,
                Err(_) => return Frame::Bad,
            }
        }
        Frame::Message(out)
    } else if until(r, b'\n', &mut out, MAX_MESSAGE, stop) {
        Frame::Message(out)
    } else {
        Frame::Bad
    }
}

/// Reads up to `byte` (consumed, not kept), at most `max` bytes; a stream that ends
/// first gives what it had as the last frame.
fn until<R: BufRead>(
    r: &mut R,
    byte: u8,
    out: &mut Vec<u8>,
    max: usize,
    stop: &dyn Fn() -> bool,
) -> bool {
    loop {
        if stop() || out.len() > max {
            return false;
        }
        let (done, used) = match r.fill_buf() {
            Ok([]) => return !out.is_empty(),
            Ok(b) => match b.iter().position(|x| *x == byte) {
                Some(i) => {
                    out.extend_from_slice(&b[..i]);
                    (true, i + 1)
                }
                None => {
                    out.extend_from_slice(b);
                    (false, b.len())
                }
            },
            Err(e) if is_tick(&e) => continue,
            Err(_) => return false,
        };
        r.consume(used);
        if done {
            return out.len() <= max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut r = std::io::Cursor::new(bytes);
        let mut v = Vec::new();
        loop {
            let f = next_frame(&mut r, &|| false);
            let last = !matches!(f, Frame::Message(_));
            v.push(f);
            if last {
                return v;
            }
        }
    }

    #[test]
    fn counted_and_line_frames() {
        use Frame::{Bad, End, Message};
        let m = |s: &str| Message(s.as_bytes().to_vec());
        for (input, want) in [
            (&b"5 hello3 abc"[..], vec![m("hello"), m("abc"), End]),
            (b"<13>one\n<13>two\n", vec![m("<13>one"), m("<13>two"), End]),
            (b"<13>no end", vec![m("<13>no end"), End]),
            (b"12 with\nnewline", vec![m("with\nnewline"), End]),
            (b"9 cut", vec![Bad]),
            (b"12x34 a", vec![Bad]),
            (b"99999999 a", vec![Bad]),
            (b"70000 a", vec![Bad]),
            (b"", vec![End]),
        ] {
            assert_eq!(frames(input), want, "{:?}", String::from_utf8_lossy(input));
        }
        let long = vec![b'a'; MAX_MESSAGE + 2];
        assert_eq!(frames(&long), vec![Bad], "a line over the limit");
    }
}

//! Delivery: a thread that submits the spool to the centre, oldest batch first,
//! while the reading thread goes on parsing and spooling the next ones.
//!
//! One batch is in flight at a time, so the centre sees each sensor's batches in
//! the order they were read (its time model measures a sensor's progress by what
//! it delivered, docs/time.md). Exactly once still holds: a batch leaves the spool
//! only after the centre's 2xx, and its id lets the centre drop a resend.
//! Bodies go compressed (gzip, which the centre accepts).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::spool::{Spool, SpoolError, SpooledBatch};

/// What the sender counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendCounters {
    pub batches_sent: u64,
    pub batches_rejected: u64,
    pub auth_refusals: u64,
    pub send_failures: u64,
    pub clock_refusals: u64,
    pub clock_refused: Option<String>,
    /// Batches the centre asked to send again later (429 or 503 with
    /// `Retry-After`): kept in the spool and sent after the wait it asked for.
    pub busy_refusals: u64,
    /// Bytes sent on the wire (compressed) and the bytes they stand for.
    pub wire_bytes: u64,
    pub body_bytes: u64,
}

/// The spool shared by the reading thread and the sender, with a signal for
/// "a batch was spooled" and "the reader is done".
#[derive(Debug)]
pub struct Shared {
    pub spool: Mutex<Spool>,
    pub counters: Mutex<SendCounters>,
    wake: Condvar,
    woken: Mutex<bool>,
    /// Set by the reader when it stops (stop asked, or `once` and all read):
    /// the sender then stops once the spool is empty, or at once when `stop` is set.
    pub reader_done: AtomicBool,
}

impl Shared {
    pub fn new(spool: Spool) -> Shared {
        Shared {
            spool: Mutex::new(spool),
            counters: Mutex::new(SendCounters::default()),
            wake: Condvar::new(),
            woken: Mutex::new(false),
            reader_done: AtomicBool::new(false),
        }
    }

    /// Wakes the sender (a batch was spooled, or the reader is done).
    pub fn notify(&self) {
        if let Ok(mut w) = self.woken.lock() {
            *w = true;
        }
        self.wake.notify_all();
    }

    /// Waits until notified or `timeout` passed.
    fn wait(&self, timeout: Duration) {
        let Ok(guard) = self.woken.lock() else { return };
        if let Ok((mut w, _)) = self.wake.wait_timeout_while(guard, timeout, |w| !*w) {
            *w = false;
        }
    }
}

/// The outcome of one submission.
pub(crate) enum Sent {
    Accepted,
    /// Refused for good (4xx other than 401, 403, 408, 425 and 429): set aside
    /// under the spool's `rejected/`, never retried.
    Rejected(u16),
    /// The token was refused (401, 403): kept and retried; the token needs fixing
    /// (a revoked or mistyped token must not throw the sensor's data away).
    Unauthorized(u16),
    /// Refused for events ahead of the centre's clock (425): kept and retried,
    /// with the centre's message.
    TooEarly(String),
    /// Try again later (network error, 408, 429, 5xx), and why.
    Retry(String),
    /// The centre is busy (429 or 503 with `Retry-After`): the batch is sent
    /// again after the time it asks for (capped at [`MAX_RETRY_AFTER`], plus up to
    /// half again, `jittered`), without the growing back-off of a failure.
    Busy {
        code: u16,
        after: Duration,
    },
}

/// The longest `Retry-After` a sensor waits.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` in seconds (the centre sends no dates), capped.
fn retry_after(r: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let secs: u64 = r
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Where and as whom to submit.
pub(crate) struct Target<'a> {
    pub agent: &'a ureq::Agent,
    pub server: &'a str,
    pub token: &'a str,
}

/// Compresses a batch body for the wire: gzip at its fastest level. Measured on
/// netfilter batches (2026-12-04): gzip level 1 (flate2) shrinks them 8.3 times at
/// about 520 MB/s of body on one core; zstd at its fastest (ruzstd, the pure-Rust
/// encoder) 9.1 times at about 130 MB/s. The sensor's CPU at 10k lines/s was 2.2 %
/// of a core with gzip and 3.2 % with zstd (`--bench sensor_cpu`): the sensor's
/// budget wins over 9 % fewer bytes.
pub fn compress(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = std::io::Write::write_all(&mut e, body);
    e.finish().unwrap_or_default()
}

pub(crate) fn submit(t: &Target<'_>, id: &str, wire: &[u8]) -> Sent {
    let url = format!("{}/api/v1/events", t.server.trim_end_matches('/'));
    let r = t
        .agent
        .post(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("Authorization", &format!("Bearer {}", t.token))
        .header("X-Scanwatch-Batch", id)
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .send(wire);
    let r = match r {
        Ok(r) => r,
        Err(e) => return Sent::Retry(e.to_string()),
    };
    let code = r.status().as_u16();
    if let (429 | 503, Some(after)) = (code, retry_after(&r)) {
        return Sent::Busy { code, after };
    }
    match code {
        200..=299 => Sent::Accepted,
        425 => Sent::TooEarly(
            r.into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_else(|e| format!("unreadable answer: {e}")),
        ),
        // Over the rate, or the body was too slow to arrive (the centre's front
        // door, docs/security.md): the batch is fine, send it again later.
        code @ (408 | 429) => Sent::Retry(format!("the centre answered {code}")),
        code @ (401 | 403) => Sent::Unauthorized(code),
        code @ 400..=499 => Sent::Rejected(code),
        code => Sent::Retry(format!("the centre answered {code}")),
    }
}

/// What a sensor waits for a `Retry-After` of `asked`: at least 100 ms, plus up
/// to half again, so sensors refused at one moment do not all come back at one
/// moment (the spread from the clock's nanoseconds: no random source needed).
fn jittered(asked: Duration) -> Duration {
    let base = asked.max(Duration::from_millis(100));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// Sleeps up to `d`, waking early when `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// The sender's loop: submits the oldest waiting batch, acknowledges it in the
/// spool, and goes on; backs off exponentially on failures. Returns when `stop`
/// is set, or when the reader is done and the spool is empty.
pub(crate) fn run(
    t: &Target<'_>,
    shared: &Shared,
    stop: &AtomicBool,
    idle: Duration,
) -> Result<(), SpoolError> {
    let mut backoff = Duration::from_millis(200);
    // The batch to send next, read from the spool and compressed: the one after
    // the batch in flight, or the batch itself after a failed attempt (it is sent
    // again as it is). Used only when it is the oldest in the spool.
    let mut ready: Option<(SpooledBatch, Vec<u8>)> = None;
    // The batch after `ready`, prepared while a failed attempt was in flight: kept
    // across retries (the spool only grows behind the oldest, which only this loop
    // takes away), so an outage compresses nothing twice.
    let mut after: Option<(SpooledBatch, Vec<u8>)> = None;
    while !stop.load(Ordering::Relaxed) {
        let oldest = shared.spool.lock().map_or(None, |s| s.oldest_seq());
        let prepared = match (ready.take(), oldest) {
            (Some((b, wire)), Some(seq)) if b.seq == seq => Some((b, wire)),
            _ => {
                after = None;
                None
            }
        };
        let (batch, wire) = match prepared {
            Some(p) => p,
            None => {
                let batch = shared.spool.lock().map_or(None, |s| s.oldest());
                let Some(batch) = batch else {
                    if shared.reader_done.load(Ordering::Relaxed) {
                        let empty = shared.spool.lock().map_or(true, |s| s.backlog().0 == 0);
                        if empty {
                            break;
                        }
                    }
                    shared.wait(idle);
                    continue;
                };
                let wire = compress(batch.body.as_bytes());
                (batch, wire)
            }
        };
        // One batch in flight (the order the centre sees is the order read); the
        // next is read and compressed meanwhile on a thread of its own.
        let prefetch = after.is_none();
        let (outcome, next) = std::thread::scope(|scope| {
            let next = prefetch.then(|| {
                scope.spawn(|| {
                    let b = shared.spool.lock().map_or(None, |s| s.after(batch.seq))?;
                    let wire = compress(b.body.as_bytes());
                    Some((b, wire))
                })
            });
            let outcome = submit(t, &batch.id, &wire);
            (outcome, next.and_then(|h| h.join().unwrap_or(None)))
        });
        if next.is_some() {
            after = next;
        }
        // Sent or set aside: the next one goes; else this one again.
        let done = matches!(outcome, Sent::Accepted | Sent::Rejected(_));
        let mut c = shared
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Sent::Accepted => {
                c.batches_sent += 1;
                c.wire_bytes += wire.len() as u64;
                c.body_bytes += batch.body.len() as u64;
                drop(c);
                ack(shared, batch.seq)?;
                backoff = Duration::from_millis(200);
            }
            Sent::Rejected(code) => {
                c.batches_rejected += 1;
                drop(c);
                tracing::warn!(
                    batch = %batch.id,
                    status = code,
                    "batch {} refused by the centre ({code}); set aside in the spool's rejected/",
                    batch.id
                );
                shared
                    .spool
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .set_aside(batch.seq)?;
            }
            Sent::Unauthorized(code) => {
                c.auth_refusals += 1;
                c.send_failures += 1;
                drop(c);
                tracing::error!(
                    batch = %batch.id,
                    status = code,
                    "the centre refused the sensor's token ({code}); batches stay in the spool until a valid token is given"
                );
                pause(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Sent::TooEarly(msg) => {
                // Nothing from the future is counted, and nothing is lost: the
                // batch waits in the spool until the clocks agree.
                tracing::warn!(
                    batch = %batch.id,
                    "batch {} refused: its events are ahead of the centre's clock; kept in the spool ({msg})",
                    batch.id
                );
                c.clock_refusals += 1;
                c.clock_refused = Some(msg);
                c.send_failures += 1;
                drop(c);
                pause(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Sent::Busy { code, after: asked } => {
                c.busy_refusals += 1;
                drop(c);
                let wait = jittered(asked);
                tracing::info!(
                    batch = %batch.id,
                    status = code,
                    "the centre is busy ({code}): batch {} sent again in {} ms",
                    batch.id,
                    wait.as_millis()
                );
                pause(wait, stop);
                // The centre answers: a later failure backs off from the start.
                backoff = Duration::from_millis(200);
            }
            Sent::Retry(why) => {
                c.send_failures += 1;
                drop(c);
                tracing::warn!(
                    batch = %batch.id,
                    error = %why,
                    "batch {} not delivered ({why}); retrying in {} ms",
                    batch.id,
                    backoff.as_millis()
                );
                pause(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        if done {
            ready = after.take();
        } else {
            ready = Some((batch, wire));
        }
    }
    Ok(())
}

fn ack(shared: &Shared, seq: u64) -> Result<(), SpoolError> {
    shared
        .spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .ack(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Answers one request on loopback with `response`, after reading its
    /// headers and body.
    fn answer_once(response: String) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as they announce.
            loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            conn.write_all(response.as_bytes()).unwrap();
        });
        format!("http://{addr}")
    }

    fn outcome(response: &str) -> Sent {
        let server = answer_once(response.to_string());
        let agent = ureq::Agent::new_with_defaults();
        let t = Target {
            agent: &agent,
            server: &server,
            token: "t",
        };
        submit(&t, "b-1", &compress(b"{}\n"))
    }

    #[test]
    fn a_busy_wait_is_what_was_asked_plus_at_most_half() {
        for asked in [0, 50, 1_000, 60_000] {
            let asked = Duration::from_millis(asked);
            let base = asked.max(Duration::from_millis(100));
            let w = jittered(asked);
            assert!(w >= base && w <= base + base / 2, "{asked:?}: {w:?}");
        }
    }

    /// A busy centre's `Retry-After` is waited (capped), not treated as a
    /// failure; without it, a 503 or 429 is a failure retried with back-off.
    #[test]
    fn retry_after_on_429_and_503_is_a_wait_not_a_failure() {
        let busy = |code: u16, after: &str| -> String {
            format!(
                "HTTP/1.1 {code} Busy\r\nretry-after: {after}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            )
        };
        for (response, want) in [
            (busy(503, "2"), Some((503, 2))),
            (busy(429, "1"), Some((429, 1))),
            (busy(503, "86400"), Some((503, MAX_RETRY_AFTER.as_secs()))),
            (busy(503, "Wed, 21 Oct 2026 07:28:00 GMT"), None),
            (
                "HTTP/1.1 503 Busy\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_string(),
                None,
            ),
        ] {
            match (outcome(&response), want) {
                (Sent::Busy { code, after }, Some((c, secs))) => {
                    assert_eq!((code, after.as_secs()), (c, secs), "{response}")
                }
                (Sent::Retry(why), None) => assert!(why.contains("answered"), "{why}"),
                (_, want) => panic!("{response}: not {want:?}"),
            }
        }
    }
}

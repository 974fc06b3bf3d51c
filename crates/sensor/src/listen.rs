//! A syslog receiver: network appliances (Cisco ASA, MikroTik, pfSense, Linux hosts
//! through rsyslog) send their logs over the network, not into a file to tail.
//!
//! UDP (one message per datagram), TCP (RFC 6587: octet counting, `LEN SP MSG`,
//! or a message per line) and TCP with TLS (RFC 5425: the same framing inside
//! TLS, rustls; the sensor presents its certificate, senders are not asked for
//! one). Each message goes as it came — `<PRI>` and the RFC 3164
//! or RFC 5424 header included — to the source's format parser, which reads both
//! headers (`scanwatch_formats`, syslog.rs). Hand-written over std sockets: the
//! framing is a few lines, and no kept crate offers a receiver that hands over raw
//! messages without parsing them its own way.
//!
//! Delivery: a message is the sensor's once it is in a spooled batch (at most a
//! second after it arrived, `run::LINGER`); what is received but not yet spooled
//! is lost if the sensor is killed, as with any syslog receiver (measured with
//! rsyslog forwarding 2,000 messages/s over TCP: 100 of 6,000 lost to a `kill -9`,
//! none doubled, every spooled one delivered; `tests/syslog_rsyslog.rs`). Asked to stop
//! (SIGTERM), the receiver first takes in what already reached this host
//! ([`Listener::finish`]: connections waiting to be accepted, bytes in the socket
//! buffers, until the senders close or a second passes), so a stop loses nothing
//! a sender had handed over. UDP messages that find the queue full are dropped and
//! counted; TCP senders wait (backpressure).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver as Rx, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages waiting between the network and the parser.
const QUEUE: usize = 65_536;

pub use crate::framing::MAX_MESSAGE;
use crate::framing::{next_frame, Frame};

/// How often blocked socket calls look at the stop flag.
const TICK: Duration = Duration::from_millis(200);

/// How often the TCP receiver looks for a new connection.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// TCP with TLS (RFC 5425).
    Tls,
}

/// Counters of a receiver, reported in heartbeats.
#[derive(Debug, Default)]
pub struct ListenStats {
    pub messages: AtomicU64,
    /// UDP messages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// TCP frames over [`MAX_MESSAGE`] or with a bad length (the connection is
    /// closed), and messages that were not UTF-8 (taken with replacement).
    pub malformed: AtomicU64,
    pub connections: AtomicU64,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Listener {
    /// `udp://ADDR` or `tcp://ADDR`, for logs and heartbeats.
    pub name: String,
    pub local: SocketAddr,
    pub stats: Arc<ListenStats>,
    rx: Rx<String>,
    flags: Arc<Flags>,
}

/// What the receiver's threads look at.
#[derive(Debug, Default)]
struct Flags {
    /// Stop now.
    stop: AtomicBool,
    /// Stop taking new work: accept what is waiting, read what is buffered, end.
    draining: AtomicBool,
    /// Receiver threads still running (the UDP or accepting thread, and each
    /// connection).
    active: AtomicUsize,
}

/// Counts a receiver thread as active while it lives.
struct Active(Arc<Flags>);

impl Active {
    fn new(f: &Arc<Flags>) -> Active {
        f.active.fetch_add(1, Ordering::SeqCst);
        Active(f.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
    }
}

impl Listener {
    /// Binds `addr` and starts receiving on a thread of its own; a TLS receiver
    /// speaks TLS with `tls` (an error without it).
    pub fn start(
        transport: Transport,
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Listener> {
        let (tx, rx) = sync_channel(QUEUE);
        let stats = Arc::new(ListenStats::default());
        let flags = Arc::new(Flags::default());
        let st = stats.clone();
        let (local, name) = match transport {
            Transport::Udp => {
                let sock = UdpSocket::bind(addr)?;
                sock.set_read_timeout(Some(TICK))?;
                let local = sock.local_addr()?;
                let alive = Active::new(&flags);
                std::thread::spawn(move || udp(&sock, &tx, &st, alive));
                (local, format!("udp://{local}"))
            }
            Transport::Tcp | Transport::Tls => {
                let tls = match (transport, tls) {
                    (Transport::Tls, None) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "a TLS receiver needs a certificate and key",
                        ))
                    }
                    (Transport::Tls, t) => t,
                    _ => None,
                };
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                let local = l.local_addr()?;
                let alive = Active::new(&flags);
                let scheme = if tls.is_some() { "tls" } else { "tcp" };
                std::thread::spawn(move || tcp(&l, tls, &tx, &st, alive));
                (local, format!("{scheme}://{local}"))
            }
        };
        Ok(Listener {
            name,
            local,
            stats,
            rx,
            flags,
        })
    }

    /// Takes up to `max` received messages, oldest first.
    pub fn take(&self, max: usize) -> Vec<String> {
        self.rx.try_iter().take(max).collect()
    }

    /// Before a stop: takes in what already reached this host — connections
    /// waiting to be accepted, datagrams and bytes in the socket buffers — until
    /// every sender closed its connection or `within` passed, then stops the
    /// threads. What they received is then in [`Listener::take`].
    pub fn finish(&self, within: Duration) {
        self.flags.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + within;
        while self.flags.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.flags.stop.store(true, Ordering::SeqCst);
    }
}

fn text(b: &[u8], stats: &ListenStats) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            String::from_utf8_lossy(b).into_owned()
        }
    }
}

/// A message without its line end; empty ones are skipped.
fn trimmed(s: &str) -> Option<&str> {
    let t = s.trim_end_matches(['\n', '\r', '\0']);
    (!t.is_empty()).then_some(t)
}

fn udp(sock: &UdpSocket, tx: &SyncSender<String>, stats: &ListenStats, alive: Active) {
    let flags = alive.0.clone();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        if flags.stop.load(Ordering::Relaxed) {
            return;
        }
        let draining = flags.draining.load(Ordering::SeqCst);
        if draining && sock.set_nonblocking(true).is_err() {
            return;
        }
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            if draining {
                return; // the buffer is empty: everything that arrived is taken
            }
            continue; // the tick, or a transient error
        };
        let msg = text(&buf[..n], stats);
        // One message per datagram; some senders put several lines in one.
        for line in msg.split('\n').filter_map(trimmed) {
            stats.messages.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(line.to_string()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

fn tcp(
    l: &TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tx: &SyncSender<String>,
    stats: &Arc<ListenStats>,
    alive: Active,
) {
    let flags = alive.0.clone();
    loop {
        if flags.stop.load(Ordering::Relaxed) {
            return;
        }
        let draining = flags.draining.load(Ordering::SeqCst);
        match l.accept() {
            Ok((conn, _)) => {
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let (tx, stats, tls) = (tx.clone(), stats.clone(), tls.clone());
                let conn_alive = Active::new(&flags);
                std::thread::spawn(move || connection(conn, tls, &tx, &stats, conn_alive));
            }
            // Nothing waiting: when draining, every connection that reached this
            // host is accepted; stop accepting.
            Err(_) if draining => return,
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Reads frames from one TCP sender until it closes, sends a bad frame, or the
/// receiver stops.
fn connection(
    conn: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    tx: &SyncSender<String>,
    stats: &ListenStats,
    alive: Active,
) {
    let flags = alive.0.clone();
    if conn.set_nonblocking(false).is_err() || conn.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    // The same framing inside TLS: rustls keeps the handshake's state across the
    // read timeouts, so a slow sender is read on as over plain TCP. A sender that
    // does not speak TLS ends as a bad frame (counted as malformed).
    let stream: Box<dyn std::io::Read + Send> = match tls {
        Some(cfg) => match rustls::ServerConnection::new(cfg) {
            Ok(c) => Box::new(rustls::StreamOwned::new(c, conn)),
            Err(_) => return,
        },
        None => Box::new(conn),
    };
    let mut r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(MAX_MESSAGE, stream));
    // Only a hard stop ends a connection that is still sending: while draining it
    // is read on until its sender closes it (or `finish` gives up).
    let stopped = || flags.stop.load(Ordering::Relaxed);
    loop {
        match next_frame(&mut r, &stopped) {
            Frame::Message(frame) => {
                if let Some(m) = trimmed(&text(&frame, stats)) {
                    stats.messages.fetch_add(1, Ordering::Relaxed);
                    if tx.send(m.to_string()).is_err() {
                        return;
                    }
                }
            }
            Frame::End => return,
            Frame::Bad => {
                if !stopped() {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
    }
}

//! Live capture for darknet and honeypot sensors: unsolicited inbound TCP SYN (no
//! ACK) and UDP to the host's own addresses on one interface, read with libpcap
//! (the `pcap` crate) behind a BPF filter, turned into events. Kernel and
//! interface drops are read from libpcap's statistics and reported.
//!
//! Packet decoding is pure ([`event_from_frame`]) and fuzzed; the capture thread
//! only moves frames from libpcap to a shared queue.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use scanwatch_event::{Event, Timestamp};
use scanwatch_formats::packet::event_from_frame;

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot capture on {iface}: {reason}")]
    Open { iface: String, reason: String },
    #[error("interface {0} has no IP address to watch")]
    NoAddress(String),
}

/// Counters of a running capture.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Frames libpcap handed over (after the BPF filter).
    pub frames: AtomicU64,
    /// Frames that became events.
    pub events: AtomicU64,
    /// Frames that matched the filter but were not unsolicited inbound to us.
    pub ignored: AtomicU64,
    /// Dropped by the kernel (buffer full) and by the interface, per libpcap.
    pub dropped_kernel: AtomicU64,
    pub dropped_interface: AtomicU64,
}

/// A running capture: events wait in `queue` until the sensor loop takes them.
pub struct Capture {
    pub iface: String,
    pub addrs: Vec<IpAddr>,
    pub stats: Arc<CaptureStats>,
    queue: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Capture({} {:?})", self.iface, self.addrs)
    }
}

/// The BPF filter: TCP with SYN set and ACK clear, or UDP, to one of `addrs`.
/// (For IPv6, BPF cannot read TCP flags; `event_from_frame` checks them.)
pub fn bpf_filter(addrs: &[IpAddr]) -> String {
    let dst: Vec<String> = addrs.iter().map(|a| format!("dst host {a}")).collect();
    format!(
        "((ip and (udp or (tcp and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn))) or (ip6 and (tcp or udp))) and ({})",
        dst.join(" or ")
    )
}

impl Capture {
    /// Opens `iface` (non-promiscuous, immediate mode) and starts the capture thread.
    /// `addrs` are the host's own addresses to watch; empty means the interface's.
    pub fn start(iface: &str, addrs: Vec<IpAddr>) -> Result<Capture, CaptureError> {
        let open_err = |e: pcap::Error| CaptureError::Open {
            iface: iface.to_string(),
            reason: e.to_string(),
        };
        let addrs = if addrs.is_empty() {
            let dev = pcap::Device::list()
                .map_err(open_err)?
                .into_iter()
                .find(|d| d.name == iface)
                .ok_or_else(|| CaptureError::Open {
                    iface: iface.to_string(),
                    reason: "no such interface".into(),
                })?;
            dev.addresses.iter().map(|a| a.addr).collect()
        } else {
            addrs
        };
        if addrs.is_empty() {
            return Err(CaptureError::NoAddress(iface.to_string()));
        }
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(open_err)?
            .promisc(false)
            .immediate_mode(true)
            .snaplen(128)
            .timeout(200)
            .open()
            .map_err(open_err)?;
        cap.filter(&bpf_filter(&addrs), true).map_err(open_err)?;
        // Non-blocking reads with a short sleep when nothing is waiting: in
        // immediate mode libpcap ignores the read timeout on Linux, and a blocked
        // read would keep the sensor from stopping on SIGTERM until a packet came.
        let mut cap = cap.setnonblock().map_err(open_err)?;
        let stats = Arc::new(CaptureStats::default());
        let queue = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, q, sp, a) = (stats.clone(), queue.clone(), stop.clone(), addrs.clone());
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match cap.next_packet() {
                    Ok(pkt) => {
                        st.frames.fetch_add(1, Ordering::Relaxed);
                        let ts = pkt.header.ts;
                        let time = Timestamp(ts.tv_sec * 1000 + ts.tv_usec / 1000);
                        match event_from_frame(pkt.data, time, &a) {
                            Some(e) => {
                                st.events.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut q) = q.lock() {
                                    q.push(e);
                                }
                            }
                            None => {
                                st.ignored.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
                if let Ok(s) = cap.stats() {
                    st.dropped_kernel
                        .store(u64::from(s.dropped), Ordering::Relaxed);
                    st.dropped_interface
                        .store(u64::from(s.if_dropped), Ordering::Relaxed);
                }
            }
        });
        Ok(Capture {
            iface: iface.to_string(),
            addrs,
            stats,
            queue,
            stop,
            thread: Some(thread),
        })
    }

    /// Takes the events captured so far, in capture order.
    pub fn take(&self) -> Vec<Event> {
        self.queue
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_every_address() {
        let f = bpf_filter(&[
            "198.18.0.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ]);
        assert!(
            f.contains("dst host 198.18.0.1 or dst host 2001:db8::1"),
            "{f}"
        );
        assert!(f.contains("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn"));
    }
}

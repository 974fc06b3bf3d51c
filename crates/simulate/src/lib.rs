//! A simulated sensor network: diurnal background scanning over many ports, research
//! scanners that hit every sensor every hour, single noisy sensors, and surges such
//! as the seed case (TCP/1025 rising from ~30 sources a day to ~1,500 across most
//! sensors, then an exploit wave on TCP/445). Deterministic for a given seed
//! (ChaCha8), so the demo, golden tests and benches see the same data every run.

mod scenarios;

use std::net::{IpAddr, Ipv4Addr};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};

pub use scenarios::{demo, golden_cases};

const HOUR_MS: i64 = 3_600_000;

/// Steady background traffic on one port.
#[derive(Clone, Debug)]
pub struct PortLoad {
    pub proto: Protocol,
    pub port: u16,
    /// Distinct sources a day across the network (on average).
    pub sources_per_day: f64,
    /// Mean events per (source, sensor) contact.
    pub events_per_source: f64,
    /// Day/night swing: the hourly rate is `1 + diurnal·sin(…)` times the mean.
    pub diurnal: f64,
    /// Mean number of sensors one source reaches.
    pub sensors_per_source: f64,
}

/// A surge on one port: ramp up, hold, decay.
#[derive(Clone, Debug)]
pub struct Surge {
    pub proto: Protocol,
    pub port: u16,
    /// Hour (from the scenario start) at which it begins.
    pub start_hour: u32,
    pub ramp_hours: u32,
    pub hold_hours: u32,
    pub decay_hours: u32,
    /// Sources per hour at the peak.
    pub peak_sources_per_hour: f64,
    pub events_per_source: f64,
    /// Share of sensors that see it (1.0 = all).
    pub coverage: f64,
    pub sensors_per_source: f64,
}

/// One sensor flooded on one port for one hour (it alone sees it).
#[derive(Clone, Debug)]
pub struct NoisyBurst {
    pub sensor: u32,
    pub proto: Protocol,
    pub port: u16,
    pub hour: u32,
    pub sources: u32,
    pub events: u32,
}

/// A sweep: the sources of one network each probing a run of ports once, each
/// probe landing on a random sensor, within one hour (an unlisted research
/// scanner or a reconnaissance campaign).
#[derive(Clone, Debug)]
pub struct SweepCampaign {
    /// The /24 the sources are in; they are `.64`, `.66`, … (every other address of
    /// its `.64/26`).
    pub net: [u8; 3],
    pub sources: u8,
    pub proto: Protocol,
    /// The ports `first_port .. first_port + ports`.
    pub first_port: u16,
    pub ports: u16,
    pub hour: u32,
}

/// When a sensor is part of the network, and how busy its network block is.
#[derive(Clone, Copy, Debug)]
pub struct SensorLife {
    /// Hour (from the scenario start) it starts reporting.
    pub join_hour: u32,
    /// Hour it stops reporting (`u32::MAX`: never).
    pub leave_hour: u32,
    /// Its share of the traffic against an ordinary sensor (4.0: four times as
    /// busy).
    pub weight: f64,
}

/// A whole simulated network over some hours.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub start: Timestamp,
    pub hours: u32,
    pub sensors: u32,
    pub seed: u64,
    pub background: Vec<PortLoad>,
    pub surges: Vec<Surge>,
    pub noisy: Vec<NoisyBurst>,
    /// Research scanners: each hits every sensor on `research_ports` every hour.
    pub research_scanners: u32,
    /// Probes per hour to uniformly random ports (vertical scans, misconfigured
    /// peers, backscatter): the long tail that makes every port of a real darknet
    /// see a little traffic.
    pub random_port_probes_per_hour: u32,
    pub research_ports: Vec<(Protocol, u16)>,
    pub sweeps: Vec<SweepCampaign>,
    /// Per sensor, when it reports and how busy it is; empty: every sensor the
    /// whole time, all alike. Background sources grow with the active sensors'
    /// weights against the first hour's.
    pub sensor_life: Vec<SensorLife>,
    /// Weekly cycle: background traffic on Saturdays and Sundays (UTC) is
    /// `1 − weekly` of a weekday's (0: none).
    pub weekly: f64,
}

impl Scenario {
    pub fn sensor_name(&self, i: u32) -> String {
        format!("sensor-{:02}", i + 1)
    }

    /// Addresses of the research scanners (for a benign-scanner list).
    pub fn research_scanner_ips(&self) -> Vec<IpAddr> {
        (0..self.research_scanners)
            .map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8)))
            .collect()
    }

    /// An hour-by-hour generator of (sensor index, event), each hour sorted by time.
    pub fn generator(&self) -> Generator<'_> {
        Generator {
            sc: self,
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            hour: 0,
        }
    }

    /// Every event, in time order.
    pub fn all_events(&self) -> Vec<(u32, Event)> {
        self.generator().flatten().collect()
    }
}

/// Produces one hour of events per call.
#[derive(Debug)]
pub struct Generator<'a> {
    sc: &'a Scenario,
    rng: ChaCha8Rng,
    hour: u32,
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        // Knuth's method; fine for small rates.
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u32, 1.0f64);
        loop {
            p *= rng.gen::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    // Normal approximation (Box–Muller) for larger rates.
    let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (lambda + z * lambda.sqrt()).round().max(0.0) as u32
}

fn geometric(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    // 1 + Geometric with the given mean (≥ 1).
    let p = 1.0 / mean.max(1.0);
    let mut k = 1;
    while rng.gen::<f64>() > p && k < 10_000 {
        k += 1;
    }
    k
}

/// A random public-looking IPv4 address that stays out of private, loopback,
/// multicast, documentation and benchmark ranges.
fn random_source(rng: &mut ChaCha8Rng) -> IpAddr {
    loop {
        let v: u32 = rng.gen();
        let a = (v >> 24) as u8;
        let b = (v >> 16) as u8;
        let bad = a == 0
            || a == 10
            || a == 127
            || a >= 224
            || (a == 192 && b == 168)
            || (a == 172 && (16..32).contains(&b))
            || (a == 198 && (b == 18 || b == 19))
            || (a == 192 && b == 0)
            || (a == 100 && (64..128).contains(&b));
        if !bad {
            return IpAddr::V4(Ipv4Addr::from(v));
        }
    }
}

/// Target address `host` in sensor `i`'s block (198.18.0.0/15, the benchmark range).
pub fn sensor_target(i: u32, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        198,
        18 + ((i >> 8) & 1) as u8,
        (i & 0xff) as u8,
        host,
    ))
}

fn syn(time: i64, proto: Protocol, src: IpAddr, dst: IpAddr, sport: u16, port: u16) -> Event {
    Event {
        time: Timestamp(time),
        proto,
        src,
        dst,
        src_port: Some(sport),
        dst_port: Some(port),
        flags: if proto == Protocol::Tcp {
            TcpFlags(TcpFlags::SYN)
        } else {
            TcpFlags(0)
        },
        flags_known: proto == Protocol::Tcp,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count: 1,
    }
}

impl Generator<'_> {
    /// The sensors reporting this hour with their weights (all, weight 1, when
    /// the scenario has no sensor lives).
    fn active(&self, hour: u32) -> Vec<(u32, f64)> {
        if self.sc.sensor_life.is_empty() {
            return (0..self.sc.sensors).map(|i| (i, 1.0)).collect();
        }
        self.sc
            .sensor_life
            .iter()
            .enumerate()
            .filter(|(_, l)| l.join_hour <= hour && hour < l.leave_hour)
            .map(|(i, l)| (i as u32, l.weight))
            .collect()
    }

    /// Background growth from sensor churn and the weekly cycle: 1.0 for a
    /// scenario with neither.
    fn background_factor(&self) -> f64 {
        let mut f = 1.0;
        if !self.sc.sensor_life.is_empty() {
            let w = |h| self.active(h).iter().map(|a| a.1).sum::<f64>();
            f *= w(self.hour) / w(0).max(1e-9);
        }
        if self.sc.weekly > 0.0 {
            let day = (self.sc.start.0 / HOUR_MS + i64::from(self.hour)).div_euclid(24);
            // 1970-01-01 was a Thursday: (day + 4) % 7 is 0 on Sundays, 6 on Saturdays.
            let dow = (day + 4).rem_euclid(7);
            if dow == 0 || dow == 6 {
                f *= 1.0 - self.sc.weekly;
            }
        }
        f
    }

    fn diurnal(&self, amp: f64) -> f64 {
        let hour_of_day = ((self.sc.start.0 / HOUR_MS + i64::from(self.hour)) % 24) as f64;
        1.0 + amp * (2.0 * std::f64::consts::PI * (hour_of_day - 9.0) / 24.0).sin()
    }

    /// Emits `n_sources` new sources on a port, each reaching some sensors.
    #[allow(clippy::too_many_arguments)]
    fn contacts(
        &mut self,
        out: &mut Vec<(u32, Event)>,
        t0: i64,
        proto: Protocol,
        port: u16,
        n_sources: u32,
        per_source: f64,
        sensors_per_source: f64,
        covered: u32,
    ) {
        let active = if self.sc.sensor_life.is_empty() {
            Vec::new()
        } else {
            self.active(self.hour)
        };
        let total: f64 = active.iter().map(|a| a.1).sum();
        for _ in 0..n_sources {
            let src = random_source(&mut self.rng);
            let reach = geometric(&mut self.rng, sensors_per_source).min(covered);
            let first = if active.is_empty() {
                self.rng.gen_range(0..self.sc.sensors)
            } else {
                // A sensor drawn by weight: a busier block meets more sources.
                let mut x = self.rng.gen::<f64>() * total;
                let mut pick = 0;
                for (k, a) in active.iter().enumerate() {
                    pick = k as u32;
                    if x < a.1 {
                        break;
                    }
                    x -= a.1;
                }
                pick
            };
            for j in 0..reach {
                // Covered sensors are the first `covered` indices (rotated per source).
                let s = if active.is_empty() {
                    (first + j * 7) % covered.max(1)
                } else {
                    active[((first + j * 7) % active.len() as u32) as usize].0
                };
                let n = geometric(&mut self.rng, per_source);
                let t = t0 + self.rng.gen_range(0..HOUR_MS);
                let dst = sensor_target(s, self.rng.gen_range(1..=254));
                let sport = self.rng.gen_range(1024..=65535);
                for k in 0..n {
                    let tk = (t + i64::from(k) * 1500).min(t0 + HOUR_MS - 1);
                    out.push((s, syn(tk, proto, src, dst, sport, port)));
                }
            }
        }
    }
}

impl Iterator for Generator<'_> {
    type Item = Vec<(u32, Event)>;

    fn next(&mut self) -> Option<Vec<(u32, Event)>> {
        if self.hour >= self.sc.hours {
            return None;
        }
        let sc = self.sc;
        let t0 = sc.start.0 + i64::from(self.hour) * HOUR_MS;
        let mut out = Vec::new();
        let growth = self.background_factor();
        for load in &sc.background {
            let lambda = load.sources_per_day / 24.0 * self.diurnal(load.diurnal) * growth;
            let n = poisson(&mut self.rng, lambda);
            self.contacts(
                &mut out,
                t0,
                load.proto,
                load.port,
                n,
                load.events_per_source,
                load.sensors_per_source,
                sc.sensors,
            );
        }
        for s in &sc.surges {
            let h = i64::from(self.hour) - i64::from(s.start_hour);
            let (ramp, hold, decay) = (
                i64::from(s.ramp_hours),
                i64::from(s.hold_hours),
                i64::from(s.decay_hours),
            );
            let level = if h < 0 {
                0.0
            } else if h < ramp {
                (h + 1) as f64 / (ramp + 1) as f64
            } else if h < ramp + hold {
                1.0
            } else if h < ramp + hold + decay {
                1.0 - (h - ramp - hold + 1) as f64 / (decay + 1) as f64
            } else {
                0.0
            };
            if level > 0.0 {
                let n = poisson(&mut self.rng, s.peak_sources_per_hour * level);
                let covered = ((f64::from(sc.sensors) * s.coverage).round() as u32).max(1);
                self.contacts(
                    &mut out,
                    t0,
                    s.proto,
                    s.port,
                    n,
                    s.events_per_source,
                    s.sensors_per_source,
                    covered,
                );
            }
        }
        for nb in sc.noisy.iter().filter(|nb| nb.hour == self.hour) {
            let sources: Vec<IpAddr> = (0..nb.sources.max(1))
                .map(|_| random_source(&mut self.rng))
                .collect();
            for k in 0..nb.events {
                let src = sources[(k % nb.sources.max(1)) as usize];
                let t = t0 + self.rng.gen_range(0..HOUR_MS);
                let dst = sensor_target(nb.sensor, self.rng.gen_range(1..=254));
                out.push((
                    nb.sensor,
                    syn(
                        t,
                        nb.proto,
                        src,
                        dst,
                        self.rng.gen_range(1024..=65535),
                        nb.port,
                    ),
                ));
            }
        }
        if sc.random_port_probes_per_hour > 0 {
            // A small pool of vertical scanners per hour sends the probes.
            let pool: Vec<IpAddr> = (0..25).map(|_| random_source(&mut self.rng)).collect();
            for _ in 0..sc.random_port_probes_per_hour {
                let src = pool[self.rng.gen_range(0..pool.len())];
                let s = self.rng.gen_range(0..sc.sensors);
                let proto = if self.rng.gen_bool(0.8) {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                };
                let port = self.rng.gen_range(1..=65535);
                let t = t0 + self.rng.gen_range(0..HOUR_MS);
                let dst = sensor_target(s, self.rng.gen_range(1..=254));
                out.push((
                    s,
                    syn(t, proto, src, dst, self.rng.gen_range(1024..=65535), port),
                ));
            }
        }
        let reporting: Vec<u32> = self.active(self.hour).iter().map(|a| a.0).collect();
        for (r, src) in sc.research_scanner_ips().into_iter().enumerate() {
            for &s in &reporting {
                for &(proto, port) in &sc.research_ports {
                    let t = t0
                        + ((r as i64 * 997 + i64::from(s) * 31 + i64::from(port)) * 1000) % HOUR_MS;
                    out.push((s, syn(t, proto, src, sensor_target(s, 1), 61000, port)));
                }
            }
        }
        for sw in sc.sweeps.iter().filter(|sw| sw.hour == self.hour) {
            for i in 0..sw.sources {
                let src = IpAddr::V4(Ipv4Addr::new(
                    sw.net[0],
                    sw.net[1],
                    sw.net[2],
                    64 + 2 * i.min(31),
                ));
                for p in 0..sw.ports {
                    let s = self.rng.gen_range(0..sc.sensors);
                    let t = t0 + self.rng.gen_range(0..HOUR_MS);
                    let dst = sensor_target(s, self.rng.gen_range(1..=254));
                    let port = sw.first_port.saturating_add(p);
                    out.push((s, syn(t, sw.proto, src, dst, 40000 + u16::from(i), port)));
                }
            }
        }
        out.sort_by_key(|(s, e)| (e.time, *s));
        self.hour += 1;
        Some(out)
    }
}

/// Formats an event as a kernel netfilter syslog line from `host` (what `iptables -j
/// LOG` writes), so simulated data can be replayed through `analyze`.
pub fn netfilter_line(host: &str, e: &Event) -> String {
    let dt = chrono::DateTime::from_timestamp_millis(e.time.0).unwrap_or_default();
    let ts = dt.format("%b %e %H:%M:%S");
    let uptime = e.time.0 as f64 / 1000.0 - 1.7e9;
    let (proto, tail) = match e.proto {
        Protocol::Tcp => (
            "TCP",
            format!(
                "WINDOW=1024 RES=0x00 {}URGP=0",
                if e.flags.is_bare_syn() {
                    "SYN "
                } else {
                    "ACK "
                }
            ),
        ),
        _ => ("UDP", "LEN=8".to_string()),
    };
    format!(
        "{ts} {host} kernel: [{uptime:.6}] DROP IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={} DST={} LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO={proto} SPT={} DPT={} {tail}",
        e.src,
        e.dst,
        e.src_port.unwrap_or(0),
        e.dst_port.unwrap_or(0),
    )
}

/// Formats an event as a DShield submission line (tab-separated) from user `user`.
pub fn dshield_line(user: &str, e: &Event) -> String {
    let dt = chrono::DateTime::from_timestamp_millis(e.time.0).unwrap_or_default();
    let proto = match e.proto {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Icmp => 1,
        Protocol::Icmpv6 => 58,
        Protocol::Other(n) => n,
    };
    format!(
        "{}\t{user}\t{}\t{}\t{}\t{}\t{}\t{proto}\t{}",
        dt.format("%Y-%m-%d %H:%M:%S +0000"),
        e.count,
        e.src,
        e.src_port.unwrap_or(0),
        e.dst,
        e.dst_port.unwrap_or(0),
        if e.flags_known {
            e.flags.letters()
        } else {
            String::new()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_ordered() {
        let sc = golden_cases().into_iter().next().unwrap();
        let a: Vec<_> = sc.generator().take(3).flatten().collect();
        let b: Vec<_> = sc.generator().take(3).flatten().collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].1.time <= w[1].1.time));
    }

    #[test]
    fn demo_seed_case_has_the_described_shape() {
        let sc = demo();
        let mut per_day: std::collections::BTreeMap<i64, (std::collections::HashSet<IpAddr>, u64)> =
            Default::default();
        for (_, e) in sc.all_events() {
            if e.dst_port == Some(1025) {
                let d = per_day.entry(e.time.0 / 86_400_000).or_default();
                d.0.insert(e.src);
                d.1 += 1;
            }
        }
        let days: Vec<(usize, u64)> = per_day.values().map(|(s, e)| (s.len(), *e)).collect();
        // Quiet days: about 30 sources and fewer than 100 events.
        for &(s, e) in &days[..5] {
            assert!(
                (15..=50).contains(&s) && e < 100,
                "quiet day {s} sources {e} events"
            );
        }
        // The surge day: 1,400–1,600 sources and 8,000+ events.
        let peak = days.iter().max_by_key(|d| d.0).unwrap();
        assert!(
            (1300..=1700).contains(&peak.0) && peak.1 >= 8000,
            "peak {peak:?}"
        );
    }
}

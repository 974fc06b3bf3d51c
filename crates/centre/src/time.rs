//! The centre's time model (`docs/time.md`): when a window is complete enough to
//! close, from what every sensor has delivered and the centre's own clock.
//!
//! - **Progress per sensor.** A sensor's delivered data is complete up to its
//!   *progress*: the latest event time it delivered minus the lateness (a sensor
//!   reading several logs may be behind in one of them), or, when larger, what its
//!   last heartbeat claimed ("everything logged up to T is delivered") minus a
//!   small grace for clock error. A claim ahead of the centre's clock counts only up
//!   to that clock.
//! - **Live sensors.** A sensor is live while its last batch or heartbeat is at
//!   most `idle_after` old on the centre's clock; only live sensors hold windows
//!   back, and a sensor that never delivered anything holds nothing back.
//! - **Closing.** Windows end at or before the *horizon* close: the smallest
//!   progress of the live sensors, or, when later, the end of the newest window
//!   whose deadline passed. A window's deadline is `max_wait` after the later of
//!   its end and the moment the centre first held it open (so a backfill of last
//!   week's logs is not closed on arrival, and a stuck sensor cannot hold a
//!   window longer than `max_wait`).
//!
//! Everything here is pure: the centre passes its clock in.

use std::collections::BTreeMap;

use scanwatch_event::Timestamp;

/// Settings of the time model. Every default is documented in `docs/time.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeConfig {
    /// Window length (from the detection settings).
    pub window_ms: i64,
    /// How far a sensor's latest event may be ahead of its slowest log (from the
    /// aggregation settings: one window, at least 5 minutes, at most one hour).
    pub lateness_ms: i64,
    /// Events further ahead of the centre's clock are refused (default 5 min).
    pub max_clock_skew_ms: i64,
    /// The longest a window waits for a live sensor that does not progress
    /// (default 10 min).
    pub max_wait_ms: i64,
    /// A sensor without a batch or heartbeat for this long holds nothing back
    /// (default 2 min: four missed heartbeats of 30 s).
    pub idle_after_ms: i64,
    /// Subtracted from a heartbeat's claim, for the clock error between the host
    /// that logs and the sensor (default 2 s).
    pub grace_ms: i64,
    /// Warnings raised by revising windows that ended longer ago than this are
    /// stored but not notified (default 24 h).
    pub notify_max_age_ms: i64,
}

impl TimeConfig {
    pub const DEFAULT_MAX_CLOCK_SKEW_MS: i64 = 5 * 60_000;
    pub const DEFAULT_MAX_WAIT_MS: i64 = 10 * 60_000;
    pub const DEFAULT_IDLE_AFTER_MS: i64 = 2 * 60_000;
    pub const DEFAULT_GRACE_MS: i64 = 2_000;
    pub const DEFAULT_NOTIFY_MAX_AGE_MS: i64 = 86_400_000;

    /// The defaults for windows of `window_ms` with the given lateness.
    pub fn new(window_ms: i64, lateness_ms: i64) -> TimeConfig {
        TimeConfig {
            window_ms,
            lateness_ms,
            max_clock_skew_ms: Self::DEFAULT_MAX_CLOCK_SKEW_MS,
            max_wait_ms: Self::DEFAULT_MAX_WAIT_MS,
            idle_after_ms: Self::DEFAULT_IDLE_AFTER_MS,
            grace_ms: Self::DEFAULT_GRACE_MS,
            notify_max_age_ms: Self::DEFAULT_NOTIFY_MAX_AGE_MS,
        }
    }
}

/// What the centre knows of one sensor's time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SensorTime {
    /// The centre's clock at the sensor's last batch or heartbeat.
    pub last_contact: Option<Timestamp>,
    /// The latest event time the sensor delivered.
    pub delivered_max: Option<Timestamp>,
    /// Its last heartbeat's "complete through" claim, capped at the centre's clock.
    pub claimed: Option<Timestamp>,
    /// How far ahead of the centre's clock its last refused batch or heartbeat
    /// claim was (None: not ahead).
    pub clock_ahead_ms: Option<i64>,
}

impl SensorTime {
    /// How far the sensor's delivered data is complete (None: it says nothing).
    pub fn progress(&self, cfg: &TimeConfig) -> Option<i64> {
        let by_data = self.delivered_max.map(|t| t.0 - cfg.lateness_ms);
        let by_claim = self.claimed.map(|t| t.0 - cfg.grace_ms);
        by_data.max(by_claim)
    }

    /// Whether the sensor holds windows back at `now`.
    pub fn live(&self, cfg: &TimeConfig, now: Timestamp) -> bool {
        self.last_contact
            .is_some_and(|t| now.0.saturating_sub(t.0) <= cfg.idle_after_ms)
    }
}

/// Per-sensor progress and the open windows' deadlines. Its size is one entry per
/// sensor that ever delivered (bounded by the registered sensors) and one per open
/// window (bounded by what the horizon and `max_wait` leave open).
#[derive(Clone, Debug)]
pub struct TimeKeeper {
    cfg: TimeConfig,
    sensors: BTreeMap<String, SensorTime>,
    /// Open window start → the centre's clock when it was first held open.
    opened: BTreeMap<i64, Timestamp>,
}

impl TimeKeeper {
    pub fn new(cfg: TimeConfig) -> TimeKeeper {
        TimeKeeper {
            cfg,
            sensors: BTreeMap::new(),
            opened: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &TimeConfig {
        &self.cfg
    }

    /// The first event of `times` further ahead of `now` than `max_clock_skew`, as
    /// (its index, how far ahead in ms).
    pub fn first_ahead(
        &self,
        times: impl IntoIterator<Item = Timestamp>,
        now: Timestamp,
    ) -> Option<(usize, i64)> {
        times
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i, t.0.saturating_sub(now.0)))
            .find(|(_, ahead)| *ahead > self.cfg.max_clock_skew_ms)
    }

    /// A batch of `sensor` was delivered at `now`, its latest event at `max_time`.
    pub fn batch(&mut self, sensor: &str, max_time: Option<Timestamp>, now: Timestamp) {
        let s = self.sensors.entry(sensor.to_string()).or_default();
        s.last_contact = Some(now);
        s.clock_ahead_ms = None;
        if let Some(t) = max_time {
            s.delivered_max = Some(s.delivered_max.map_or(t, |m| m.max(t)));
        }
    }

    /// A batch of `sensor` was refused because its events are `ahead_ms` ahead of
    /// the centre's clock: the sensor is still in contact, and shown as clock-ahead.
    pub fn refused_ahead(&mut self, sensor: &str, ahead_ms: i64, now: Timestamp) {
        let s = self.sensors.entry(sensor.to_string()).or_default();
        s.last_contact = Some(now);
        s.clock_ahead_ms = Some(ahead_ms);
    }

    /// A heartbeat of `sensor` at `now`, claiming (if `claim`) that everything it
    /// logged up to then is delivered. A claim ahead of `now` counts up to `now`
    /// only, and a claim more than `max_clock_skew` ahead marks the sensor's clock
    /// as ahead. Returns how far ahead the claim was, when it was.
    pub fn heartbeat(
        &mut self,
        sensor: &str,
        claim: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<i64> {
        let cfg = self.cfg;
        let s = self.sensors.entry(sensor.to_string()).or_default();
        s.last_contact = Some(now);
        let claim = claim?;
        let ahead = claim.0.saturating_sub(now.0);
        s.clock_ahead_ms = (ahead > cfg.max_clock_skew_ms).then_some(ahead);
        let capped = Timestamp(claim.0.min(now.0));
        s.claimed = Some(s.claimed.map_or(capped, |c| c.max(capped)));
        (ahead > cfg.max_clock_skew_ms).then_some(ahead)
    }

    /// Restores a sensor's state (at start, from the store).
    pub fn restore(&mut self, sensor: &str, t: SensorTime) {
        let s = self.sensors.entry(sensor.to_string()).or_default();
        s.last_contact = s.last_contact.max(t.last_contact);
        s.delivered_max = s.delivered_max.max(t.delivered_max);
        s.claimed = s.claimed.max(t.claimed);
        s.clock_ahead_ms = s.clock_ahead_ms.or(t.clock_ahead_ms);
    }

    /// Notes that window `ws` is open at `now` (its deadline runs from then).
    pub fn opened(&mut self, ws: i64, now: Timestamp) {
        self.opened.entry(ws).or_insert(now);
    }

    /// Forgets the deadlines of windows that closed (those before `closed_before`).
    pub fn closed(&mut self, closed_before: i64) {
        self.opened = self.opened.split_off(&closed_before);
    }

    /// The horizon at `now`: windows ending at or before it may close.
    pub fn horizon(&self, now: Timestamp) -> Option<i64> {
        let cfg = &self.cfg;
        let live = self
            .sensors
            .values()
            .filter(|s| s.live(cfg, now))
            .filter_map(|s| s.progress(cfg))
            .min();
        let by_clock = self
            .opened
            .iter()
            .filter(|(ws, at)| (*ws + cfg.window_ms).max(at.0) + cfg.max_wait_ms <= now.0)
            .map(|(ws, _)| ws + cfg.window_ms)
            .max();
        live.max(by_clock)
    }

    /// Every sensor's time, by name.
    pub fn sensors(&self) -> &BTreeMap<String, SensorTime> {
        &self.sensors
    }

    /// Open windows with a deadline.
    pub fn open_windows(&self) -> usize {
        self.opened.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TimeConfig {
        TimeConfig::new(30_000, 300_000)
    }

    #[test]
    fn the_slowest_live_sensor_decides() {
        let mut k = TimeKeeper::new(cfg());
        let now = Timestamp(10_000_000);
        k.batch("a", Some(Timestamp(2_000_000)), now);
        k.batch("b", Some(Timestamp(1_000_000)), now);
        assert_eq!(k.horizon(now), Some(1_000_000 - 300_000));
        // b claims completeness up to now: a's data decides.
        k.heartbeat("b", Some(now), now);
        assert_eq!(k.horizon(now), Some(2_000_000 - 300_000));
        k.heartbeat("a", Some(now), now);
        assert_eq!(k.horizon(now), Some(now.0 - 2_000));
    }

    #[test]
    fn an_idle_sensor_holds_nothing_back_and_a_new_one_nothing_until_it_delivers() {
        let mut k = TimeKeeper::new(cfg());
        let t0 = Timestamp(10_000_000);
        k.batch("a", Some(Timestamp(1_000_000)), t0);
        k.heartbeat("b", Some(t0), t0);
        k.heartbeat("c", None, t0); // says nothing of its progress
        assert_eq!(k.horizon(t0), Some(700_000));
        let later = Timestamp(t0.0 + 120_001);
        k.heartbeat("b", Some(later), later);
        assert_eq!(k.horizon(later), Some(later.0 - 2_000), "a went idle");
    }

    #[test]
    fn a_claim_ahead_of_the_centre_counts_up_to_its_clock() {
        let mut k = TimeKeeper::new(cfg());
        let now = Timestamp(10_000_000);
        assert_eq!(
            k.heartbeat("a", Some(Timestamp(now.0 + 86_400_000)), now),
            Some(86_400_000)
        );
        assert_eq!(k.horizon(now), Some(now.0 - 2_000));
        assert_eq!(k.sensors()["a"].clock_ahead_ms, Some(86_400_000));
        assert_eq!(
            k.first_ahead([Timestamp(now.0), Timestamp(now.0 + 300_001)], now),
            Some((1, 300_001))
        );
        assert_eq!(k.first_ahead([Timestamp(now.0 + 300_000)], now), None);
    }

    #[test]
    fn a_window_waits_at_most_max_wait_from_its_end_or_its_opening() {
        let mut k = TimeKeeper::new(cfg());
        let now = Timestamp(10_000_000);
        k.batch("stuck", Some(Timestamp(0)), now);
        // A live window: end at 9_990_000.
        k.opened(9_960_000, now);
        // An old window (backfill) opened now: its deadline runs from now.
        k.opened(60_000, now);
        assert_eq!(k.horizon(now), Some(-300_000));
        let t = Timestamp(now.0 + 599_999);
        assert_eq!(
            k.horizon(t),
            None,
            "the backfill window waits from its opening"
        );
        let t = Timestamp(now.0 + 600_000);
        assert_eq!(k.horizon(t), Some(9_990_000));
        k.closed(9_990_000);
        assert_eq!(k.open_windows(), 0);
    }
}

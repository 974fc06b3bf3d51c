//! Once per sink, updates as updates: what a sink remembers about one surge (keyed
//! by protocol, port and episode start), kept in the store (`Store::sink_state`) as
//! a small versioned JSON document so it survives restarts.
//!
//! The rule, for one sink and one warning that passed the sink's filters:
//!
//! 1. a warning id this sink already delivered, skipped or dead-lettered is never
//!    handled again (the server re-raises every stored warning, with its id, when it
//!    replays at start);
//! 2. if nothing of this surge was delivered to the sink yet, it is sent as
//!    `"event": "new"` (so the first warning that passes the filters opens the surge
//!    for that sink, even if the detector calls it a later window);
//! 3. otherwise, with `updates = false`, it is skipped;
//! 4. otherwise it is sent as `"event": "update"` only if the surge grew since the
//!    last warning delivered to this sink: strictly more distinct sources, or a
//!    strictly higher severity. Windows that merely go on are skipped.
//!
//! When the surge's incident is over (no warning for more than one window), a sink
//! that was told of the surge gets `"event": "resolved"` once, with the last
//! warning; a later warning of the same surge opens it again as `new`.
//!
//! The state is written after a delivery succeeds, so a crash between the two sends
//! that one notification again after the restart (at least once, never lost).

use serde::{Deserialize, Serialize};

use crate::warning::{Event, Severity, Warning};

/// Version of the state document.
pub const STATE_VERSION: u32 = 1;

/// Ids kept per list and surge; older ones are forgotten (a surge has one warning
/// per window, so this is weeks of hourly windows).
pub const MAX_IDS: usize = 1000;

/// What was last delivered for a surge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSent {
    pub id: i64,
    pub sources: u64,
    pub severity: Severity,
}

/// One sink's memory of one surge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurgeState {
    pub v: u32,
    /// Warning ids delivered, oldest first.
    #[serde(default)]
    pub delivered: Vec<i64>,
    /// Ids decided on without sending (no growth, updates off), oldest first.
    #[serde(default)]
    pub skipped: Vec<i64>,
    /// Ids given up on after the last attempt (a dead letter holds the payload).
    #[serde(default)]
    pub dead: Vec<i64>,
    #[serde(default)]
    pub last: Option<LastSent>,
    /// The surge's end was sent (a later warning of it opens it again as `new`).
    #[serde(default)]
    pub resolved: bool,
}

impl Default for SurgeState {
    fn default() -> Self {
        SurgeState {
            v: STATE_VERSION,
            delivered: Vec::new(),
            skipped: Vec::new(),
            dead: Vec::new(),
            last: None,
            resolved: false,
        }
    }
}

/// What to do with a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Send(Event),
    /// Rule 1.
    AlreadyHandled,
    /// Rule 3.
    UpdatesOff,
    /// Rule 4.
    NotGrown,
}

fn push(list: &mut Vec<i64>, id: i64) {
    if !list.contains(&id) {
        list.push(id);
    }
    if list.len() > MAX_IDS {
        let extra = list.len() - MAX_IDS;
        list.drain(..extra);
    }
}

impl SurgeState {
    /// Reads a stored document; one of a newer version, or unreadable, is an error
    /// (so nothing is sent twice by mistake).
    pub fn from_json(s: &str) -> Result<SurgeState, String> {
        let st: SurgeState =
            serde_json::from_str(s).map_err(|e| format!("unreadable sink state: {e}"))?;
        if st.v != STATE_VERSION {
            return Err(format!(
                "sink state version {} is not supported; this build reads version {STATE_VERSION}",
                st.v
            ));
        }
        Ok(st)
    }

    pub fn to_json(&self) -> String {
        // A struct of numbers and enums: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The rule in the module documentation.
    pub fn decide(&self, w: &Warning, updates: bool) -> Decision {
        if self.delivered.contains(&w.id)
            || self.skipped.contains(&w.id)
            || self.dead.contains(&w.id)
        {
            return Decision::AlreadyHandled;
        }
        let Some(last) = &self.last else {
            return Decision::Send(Event::New);
        };
        // The sink was told the surge was over: it starts again.
        if self.resolved {
            return Decision::Send(Event::New);
        }
        if !updates {
            return Decision::UpdatesOff;
        }
        if w.sources > last.sources || w.severity > last.severity {
            Decision::Send(Event::Update)
        } else {
            Decision::NotGrown
        }
    }

    /// Whether the surge's end is to be sent: something of it was delivered, and
    /// its end was not sent yet.
    pub fn should_resolve(&self) -> bool {
        self.last.is_some() && !self.resolved
    }

    pub fn mark_resolved(&mut self) {
        self.resolved = true;
    }

    pub fn mark_delivered(&mut self, w: &Warning) {
        self.resolved = false;
        push(&mut self.delivered, w.id);
        self.last = Some(LastSent {
            id: w.id,
            sources: w.sources,
            severity: w.severity,
        });
    }

    pub fn mark_skipped(&mut self, w: &Warning) {
        push(&mut self.skipped, w.id);
    }

    pub fn mark_dead(&mut self, w: &Warning) {
        push(&mut self.dead, w.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: i64, sources: u64, severity: &str) -> Warning {
        let mut v = crate::warning::tests::sample(id);
        v["sources"] = sources.into();
        v["severity"] = severity.into();
        Warning::from_stored(id, &v.to_string()).expect("valid")
    }

    #[test]
    fn new_then_updates_only_when_grown_and_never_twice() {
        let mut s = SurgeState::default();
        let a = w(1, 100, "medium");
        assert_eq!(s.decide(&a, true), Decision::Send(Event::New));
        s.mark_delivered(&a);
        assert_eq!(s.decide(&a, true), Decision::AlreadyHandled);
        // Same sources, same severity: not grown.
        let b = w(2, 100, "medium");
        assert_eq!(s.decide(&b, true), Decision::NotGrown);
        s.mark_skipped(&b);
        assert_eq!(s.decide(&b, true), Decision::AlreadyHandled);
        // Fewer sources but higher severity: grown.
        let c = w(3, 90, "high");
        assert_eq!(s.decide(&c, true), Decision::Send(Event::Update));
        s.mark_delivered(&c);
        // More sources than the last delivered (90), same severity: grown.
        let d = w(4, 95, "high");
        assert_eq!(s.decide(&d, true), Decision::Send(Event::Update));
        assert_eq!(s.decide(&d, false), Decision::UpdatesOff);
        // Lower severity and fewer sources: not grown.
        assert_eq!(s.decide(&w(5, 10, "low"), true), Decision::NotGrown);
    }

    #[test]
    fn resolved_once_after_a_delivery_and_a_later_warning_opens_again() {
        let mut s = SurgeState::default();
        assert!(!s.should_resolve(), "nothing delivered: nothing to resolve");
        let a = w(1, 100, "medium");
        s.mark_dead(&a);
        assert!(!s.should_resolve(), "a dead letter told the sink nothing");
        let b = w(2, 120, "medium");
        assert_eq!(s.decide(&b, true), Decision::Send(Event::New));
        s.mark_delivered(&b);
        assert!(s.should_resolve());
        s.mark_resolved();
        assert!(!s.should_resolve(), "once");
        let back = SurgeState::from_json(&s.to_json()).expect("readable");
        assert!(!back.should_resolve(), "also after a restart");
        // The same surge warns again: a new story for the sink.
        let c = w(3, 90, "low");
        assert_eq!(back.decide(&c, true), Decision::Send(Event::New));
        let mut back = back;
        back.mark_delivered(&c);
        assert!(back.should_resolve());
        // A state written before `resolved` existed reads as not resolved.
        let old = SurgeState::from_json(
            r#"{"v":1,"delivered":[2],"last":{"id":2,"sources":120,"severity":"medium"}}"#,
        )
        .expect("readable");
        assert!(old.should_resolve());
    }

    #[test]
    fn dead_letters_are_not_retried_and_a_failed_first_stays_new() {
        let mut s = SurgeState::default();
        let a = w(1, 100, "medium");
        s.mark_dead(&a);
        assert_eq!(s.decide(&a, true), Decision::AlreadyHandled);
        assert_eq!(
            s.decide(&w(2, 100, "medium"), true),
            Decision::Send(Event::New)
        );
    }

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let mut s = SurgeState::default();
        s.mark_delivered(&w(7, 3, "high"));
        let back = SurgeState::from_json(&s.to_json()).expect("readable");
        assert_eq!(back, s);
        assert!(SurgeState::from_json(r#"{"v":2}"#).is_err());
        assert!(SurgeState::from_json("nope").is_err());
        let mut s = SurgeState::default();
        for id in 0..(MAX_IDS as i64 + 5) {
            push(&mut s.skipped, id);
        }
        assert_eq!(s.skipped.len(), MAX_IDS);
        assert_eq!(s.skipped[0], 5);
    }
}

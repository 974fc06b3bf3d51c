//! The conformance test of the `Store` trait, written once over `&mut dyn Store`: it
//! exercises every method, asserts what must hold for any store, and returns a
//! transcript of every answer (alert ids replaced by the order they were first
//! returned, random tokens left out) so that two stores can be compared for equality.
#![allow(clippy::unwrap_used, dead_code)] // a test may panic on a broken setup

use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use scanwatch_store::{
    AggregateCommit, AlertRow, BatchOutcome, BatchPart, ContextItem, ContextKind, DeadLetter,
    PartialRow, Role, SessionRecord, Store, StoreError, TopBy, UserRecord, WindowRow,
};

pub const DAY: i64 = 86_400_000;
/// 2023-11-14 00:00:00 UTC: a day boundary, so whole-day pruning (ClickHouse) and
/// exact pruning (SQLite) agree on cutoffs at day boundaries.
pub const T0: i64 = 19_675 * DAY;

/// Strings meant to break naive quoting.
pub const HOSTILE: &str = "it's \\' \"; DROP TABLE x; -- \n\t\0 \u{7f} é☃ \\x27 `{x:UInt8}`";

pub fn ev(t: i64, src: &str, dst: &str, port: u16) -> Event {
    Event {
        src_port: Some(40000),
        ..Event::syn_probe(
            Timestamp(t),
            src.parse().unwrap(),
            dst.parse().unwrap(),
            port,
            2,
        )
    }
}

fn window(start: i64, port: u16, events: u64, top: &str) -> WindowRow {
    WindowRow {
        window_start: Timestamp(start),
        window_end: Timestamp(start + 60_000),
        proto: 6,
        port,
        events,
        sources: events / 2,
        sensors: 1,
        targets: 3,
        top_sources_json: top.to_string(),
    }
}

fn alert(kind: &str, port: u16, start: i64, sev: u8) -> AlertRow {
    AlertRow {
        id: 0,
        kind: kind.to_string(),
        proto: 6,
        port,
        window_start: Timestamp(start),
        severity_rank: sev,
        json: format!("{{\"kind\":\"{kind}\",\"port\":{port},\"q\":\"it's\"}}"),
    }
}

struct Log {
    lines: Vec<String>,
    ids: Vec<i64>,
}

impl Log {
    fn push(&mut self, what: &str, v: impl std::fmt::Debug) {
        self.lines.push(format!("{what}: {v:?}"));
    }
    /// The order in which an alert id was first seen (ids differ between stores).
    fn id(&mut self, id: i64) -> usize {
        match self.ids.iter().position(|x| *x == id) {
            Some(i) => i,
            None => {
                self.ids.push(id);
                self.ids.len() - 1
            }
        }
    }
    fn alerts(&mut self, what: &str, rows: Vec<AlertRow>) {
        let v: Vec<_> = rows
            .into_iter()
            .map(|a| {
                let id = self.id(a.id);
                (
                    id,
                    a.kind,
                    a.proto,
                    a.port,
                    a.window_start,
                    a.severity_rank,
                    a.json,
                )
            })
            .collect();
        self.push(what, v);
    }
}

fn kind(e: StoreError) -> String {
    match e {
        StoreError::SensorExists(n) => format!("SensorExists({n})"),
        StoreError::TokenExists(n) => format!("TokenExists({n})"),
        StoreError::UserExists(n) => format!("UserExists({n})"),
        StoreError::NoSuchSensor(n) => format!("NoSuchSensor({n})"),
        StoreError::NoSuchToken(n) => format!("NoSuchToken({n})"),
        StoreError::InvalidName(n) => format!("InvalidName({n})"),
        StoreError::BatchStored { sensor, batch } => format!("BatchStored({sensor}, {batch})"),
        StoreError::EventCount { index, count } => format!("EventCount({index}, {count})"),
        other => panic!("unexpected error: {other}"),
    }
}

/// Runs every method of the trait against `s`; returns the transcript.
pub fn conformance(s: &mut dyn Store) -> Vec<String> {
    let mut log = Log {
        lines: Vec::new(),
        ids: Vec::new(),
    };
    let t = |ms: i64| Timestamp(T0 + ms);

    // Sensors and their tokens.
    let tok1 = s.add_sensor("fw-1", t(1)).unwrap();
    let tok2 = s.add_sensor("fw-2", t(2)).unwrap();
    assert!(tok1.starts_with("swt_") && tok1.len() == 68);
    log.push("auth fw-1", s.authenticate_sensor(&tok1).unwrap());
    log.push("auth fw-2", s.authenticate_sensor(&tok2).unwrap());
    log.push("auth bogus", s.authenticate_sensor("swt_nope").unwrap());
    log.push("auth hostile", s.authenticate_sensor(HOSTILE).unwrap());
    log.push("add again", s.add_sensor("fw-1", t(3)).map_err(kind).err());
    log.push(
        "add bad",
        s.add_sensor("bad name", t(3)).map_err(kind).err(),
    );
    log.push(
        "add hostile",
        s.add_sensor(HOSTILE, t(3)).map_err(kind).err(),
    );
    s.revoke_sensor("fw-2").unwrap();
    log.push("auth revoked", s.authenticate_sensor(&tok2).unwrap());
    log.push("revoke ghost", s.revoke_sensor("ghost").map_err(kind).err());
    s.record_heartbeat("fw-1", "{\"backlog\":1}", t(10))
        .unwrap();
    s.record_heartbeat("fw-1", &format!("{{\"note\":{HOSTILE:?}}}"), t(20))
        .unwrap();
    log.push(
        "heartbeat ghost",
        s.record_heartbeat("ghost", "{}", t(5)).map_err(kind).err(),
    );

    // API tokens: listed without the token, revoked by name.
    let ops = s.add_api_token("grafana", Role::Analyst, t(5)).unwrap();
    s.add_api_token("ci", Role::Admin, t(6)).unwrap();
    log.push("api tokens", s.api_tokens().unwrap());
    s.revoke_api_token("grafana").unwrap();
    log.push("auth revoked api token", s.authenticate_api(&ops).unwrap());
    log.push(
        "api tokens after",
        s.api_tokens()
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.revoked))
            .collect::<Vec<_>>(),
    );
    log.push(
        "revoke ghost api token",
        s.revoke_api_token("ghost").map_err(kind).err(),
    );

    // Batches: exactly once per (sensor, batch id).
    let mut v6 = ev(T0 + 2_000, "2001:db8::1", "2001:db8::99", 445);
    v6.flags_known = false;
    v6.flags = TcpFlags(0);
    let mut udp = ev(T0 + 3_000, "192.0.2.1", "198.18.0.2", 53);
    udp.proto = Protocol::Udp;
    udp.flags_known = false;
    udp.flags = TcpFlags(0);
    udp.count = 5;
    let mut icmp = ev(T0 + 3_000, "192.0.2.1", "198.18.0.1", 0);
    icmp.proto = Protocol::Icmp;
    icmp.src_port = None;
    icmp.dst_port = None;
    icmp.icmp_type = Some(8);
    icmp.flags_known = false;
    icmp.flags = TcpFlags(0);
    let mut out = ev(T0 + 3_500, "198.18.0.1", "192.0.2.9", 443);
    out.direction = Direction::Outbound;
    out.action = Action::Accept;
    let mut synack = ev(T0 + 3_600, "192.0.2.7", "198.18.0.1", 445);
    synack.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    synack.action = Action::Reject;
    synack.direction = Direction::Unknown;
    let day0 = vec![
        ev(T0 + 1_000, "192.0.2.1", "198.18.0.1", 445),
        v6,
        // The same address as IPv4 and as IPv4-mapped IPv6 are two sources.
        ev(T0 + 1_000, "::ffff:192.0.2.1", "198.18.0.1", 445),
        udp,
        icmp,
        out,
        synack,
        ev(T0 + 1_000, "192.0.2.2", "198.18.0.2", 23),
    ];
    let day1 = vec![
        ev(T0 + DAY + 5_000, "192.0.2.1", "198.18.0.1", 445),
        ev(T0 + DAY + 5_000, "192.0.2.3", "198.18.0.3", 23),
        ev(T0 + DAY + 4_000, "192.0.2.3", "198.18.0.4", 23),
    ];
    log.push("b-1", s.commit_batch("fw-1", "b-1", &day0, t(100)).unwrap());
    assert_eq!(
        s.commit_batch("fw-1", "b-1", &day0, t(101)).unwrap(),
        BatchOutcome::Duplicate
    );
    log.push(
        "b-1 again",
        s.commit_batch("fw-1", "b-1", &day1, t(102)).unwrap(),
    );
    log.push(
        "b-1 other sensor",
        s.commit_batch("fw-2", "b-1", &day1[..1], t(103)).unwrap(),
    );
    log.push(
        "hostile batch id",
        s.commit_batch("fw-1", HOSTILE, &day1[1..], Timestamp(T0 + DAY + 100))
            .unwrap(),
    );
    log.push(
        "hostile batch id again",
        s.commit_batch("fw-1", HOSTILE, &day1[1..], Timestamp(T0 + DAY + 101))
            .unwrap(),
    );
    log.push("empty", s.commit_batch("fw-1", "b-0", &[], t(50)).unwrap());
    log.push(
        "ghost batch",
        s.commit_batch("ghost", "b-9", &day0, t(5))
            .map_err(kind)
            .err(),
    );
    // An event that counts no packet, or more than a line may carry, is refused
    // with its batch (nothing of it stored: the events below are counted).
    for count in [0, scanwatch_event::MAX_COUNT + 1] {
        let mut bad = day1.clone();
        bad[1].count = count;
        log.push(
            &format!("count {count}"),
            s.commit_batch("fw-1", "b-bad", &bad, t(104))
                .map_err(kind)
                .err(),
        );
    }
    let sensors = s.sensors().unwrap();
    let names: Vec<_> = sensors.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["fw-1", "fw-2"]);
    log.push("sensors", sensors);

    // Raw events.
    let all = s
        .events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
        .unwrap();
    assert_eq!(all.len(), day0.len() + 1 + 2);
    log.push("events all", all);
    log.push(
        "events day0 part",
        s.events_between(t(1_000), t(3_000)).unwrap(),
    );
    log.push("events empty", s.events_between(t(9), t(9)).unwrap());

    // Totals per port, exact distinct counts.
    for by in [TopBy::Events, TopBy::Sources, TopBy::Sensors] {
        log.push(
            &format!("top {by:?}"),
            s.top_ports(t(0), t(2 * DAY), by, 10).unwrap(),
        );
    }
    log.push(
        "top limit 1",
        s.top_ports(t(0), t(2 * DAY), TopBy::Events, 1).unwrap(),
    );
    log.push(
        "top limit 0",
        s.top_ports(t(0), t(2 * DAY), TopBy::Events, 0).unwrap(),
    );
    log.push(
        "top day0",
        s.top_ports(t(0), t(DAY), TopBy::Sources, 10).unwrap(),
    );
    // Ranges that do not start or end on an hour (ClickHouse reads ranges up to two
    // days from its raw events; its cells are compared with those in
    // tests/clickhouse.rs).
    for (a, b) in [
        (1_500, DAY + 4_500),
        (2_500, 3_550),
        (3_000, DAY),
        (0, 3_600_000),
    ] {
        log.push(
            &format!("top {a}..{b}"),
            s.top_ports(t(a), t(b), TopBy::Sources, 10).unwrap(),
        );
    }
    for src in [
        "192.0.2.1",
        "::ffff:192.0.2.1",
        "2001:db8::1",
        "192.0.2.3",
        "10.9.9.9",
    ] {
        log.push(
            &format!("source {src}"),
            s.source_activity(src.parse().unwrap(), t(0), t(2 * DAY))
                .unwrap(),
        );
        log.push(
            &format!("source {src} 1500..{}", DAY + 4_500),
            s.source_activity(src.parse().unwrap(), t(1_500), t(DAY + 4_500))
                .unwrap(),
        );
    }

    // Windows: put, read, replace.
    log.push("latest none", s.latest_window().unwrap());
    s.put_windows(&[
        window(T0, 445, 10, "[]"),
        window(T0, 23, 4, "[{\"ip\":\"192.0.2.2\",\"events\":4}]"),
        window(T0 + 60_000, 445, 12, HOSTILE),
        window(T0 + DAY, 445, 7, "[]"),
    ])
    .unwrap();
    log.push(
        "history 445",
        s.port_history(6, 445, t(0), t(2 * DAY)).unwrap(),
    );
    log.push("history 23", s.port_history(6, 23, t(0), t(DAY)).unwrap());
    log.push(
        "history udp",
        s.port_history(17, 445, t(0), t(DAY)).unwrap(),
    );
    log.push("between", s.windows_between(t(0), t(2 * DAY)).unwrap());
    log.push("latest", s.latest_window().unwrap());
    // A replay replaces; the last of two rows in one call wins.
    s.put_windows(&[
        window(T0, 445, 99, "[1]"),
        window(T0 + 60_000, 445, 1, "[a]"),
        window(T0 + 60_000, 445, 2, "[b]"),
    ])
    .unwrap();
    let between = s.windows_between(t(0), t(2 * DAY)).unwrap();
    assert_eq!(between.len(), 4, "a replaced window is not a new one");
    log.push("between replaced", between);
    log.push(
        "between first minute",
        s.windows_between(t(0), t(60_000)).unwrap(),
    );

    // Alerts: stored once per (kind, proto, port, window), stable ids.
    let a1 = s.put_alert(&alert("surge", 445, T0, 3)).unwrap();
    let a2 = s.put_alert(&alert("surge", 23, T0, 2)).unwrap();
    let a3 = s.put_alert(&alert("new-port", 445, T0 + DAY, 4)).unwrap();
    let a4 = s.put_alert(&alert(HOSTILE, 445, T0 + 60_000, 3)).unwrap();
    let mut again = alert("surge", 445, T0, 0);
    again.json = "{\"other\":1}".into();
    assert_eq!(s.put_alert(&again).unwrap(), a1, "the same warning again");
    assert_eq!(s.put_alert(&alert("surge", 23, T0, 2)).unwrap(), a2);
    assert!(a1 != a2 && a2 != a3 && a3 != a4 && a1 != a4);
    // Upserts (a revised window, docs/time.md): unchanged, changed under the same
    // id, and new.
    assert_eq!(
        s.upsert_alert(&alert("surge", 23, T0, 2)).unwrap(),
        (a2, false),
        "an unchanged warning"
    );
    let mut revised = alert("surge", 23, T0, 3);
    revised.json = "{\"revision\":1}".into();
    assert_eq!(
        s.upsert_alert(&revised).unwrap(),
        (a2, true),
        "a revised warning keeps its id"
    );
    assert_eq!(s.upsert_alert(&revised).unwrap(), (a2, false));
    let (a5, new) = s.upsert_alert(&alert("surge", 1025, T0, 4)).unwrap();
    assert!(new && ![a1, a2, a3, a4].contains(&a5), "a new warning");
    for a in [a1, a2, a3, a4, a5] {
        log.id(a);
    }
    log.alerts("alerts all", s.alerts(t(0), t(2 * DAY), 0).unwrap());
    log.alerts(
        "alerts min 3",
        s.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 3)
            .unwrap(),
    );
    log.alerts("alerts day0", s.alerts(t(0), t(DAY), 0).unwrap());
    log.alerts("alert a3", s.alert(a3).unwrap().into_iter().collect());
    log.alerts("alert a4", s.alert(a4).unwrap().into_iter().collect());
    log.push("alert none", s.alert(123_456_789).unwrap());

    // API tokens.
    let api = s.add_api_token("ops", Role::Analyst, t(1)).unwrap();
    let adm = s.add_api_token("root", Role::Admin, t(1)).unwrap();
    log.push("api ops", s.authenticate_api(&api).unwrap());
    log.push("api root", s.authenticate_api(&adm).unwrap());
    log.push("api sensor token", s.authenticate_api(&tok1).unwrap());
    log.push("api hostile", s.authenticate_api(HOSTILE).unwrap());
    log.push(
        "api again",
        s.add_api_token("ops", Role::Admin, t(2))
            .map_err(kind)
            .err(),
    );
    log.push(
        "api bad",
        s.add_api_token("a b", Role::Admin, t(2))
            .map_err(kind)
            .err(),
    );

    // Users and sessions.
    let user = |name: &str, role: Role, pw: &str, created: i64| UserRecord {
        name: name.into(),
        role,
        password_hash: pw.into(),
        created: Timestamp(created),
    };
    s.put_user(&user("alice", Role::Admin, "$argon2id$v=19$a", T0), false)
        .unwrap();
    s.put_user(&user("bob", Role::Analyst, HOSTILE, T0 + 1), false)
        .unwrap();
    log.push(
        "user again",
        s.put_user(&user("alice", Role::Analyst, "x", T0 + 5), false)
            .map_err(kind)
            .err(),
    );
    log.push(
        "user bad",
        s.put_user(&user("a'b", Role::Analyst, "x", T0 + 5), false)
            .map_err(kind)
            .err(),
    );
    log.push("users", s.users().unwrap());
    log.push("user bob", s.user("bob").unwrap());
    log.push("user ghost", s.user("ghost").unwrap());
    let sess = |id: &str, user: &str, expires: i64| SessionRecord {
        id_hash: id.into(),
        user: user.into(),
        csrf: format!("csrf-{id}"),
        created: Timestamp(T0),
        expires: Timestamp(expires),
    };
    s.put_session(&sess("s1", "alice", T0 + 1_000)).unwrap();
    s.put_session(&sess("s2", "alice", T0 + 5_000)).unwrap();
    s.put_session(&sess("s3", "bob", T0 + 9_000)).unwrap();
    s.put_session(&sess("s4", "bob", T0 + 9_000)).unwrap();
    log.push("session s1 live", s.session("s1", t(999)).unwrap());
    log.push("session s1 expired", s.session("s1", t(1_000)).unwrap());
    log.push("session hostile", s.session(HOSTILE, t(0)).unwrap());
    // Logging out of s3 at 2000 also ends the expired s1.
    s.delete_session("s3", t(2_000)).unwrap();
    log.push("s1 after", s.session("s1", t(0)).unwrap());
    log.push("s2 after", s.session("s2", t(0)).unwrap());
    log.push("s3 after", s.session("s3", t(0)).unwrap());
    // A password reset keeps the creation time and ends the user's sessions.
    s.put_user(
        &user("alice", Role::Analyst, "$argon2id$new", T0 + 77),
        true,
    )
    .unwrap();
    s.put_user(&user("carol", Role::Admin, "$argon2id$c", T0 + 78), true)
        .unwrap();
    log.push("users after reset", s.users().unwrap());
    log.push("s2 after reset", s.session("s2", t(0)).unwrap());
    log.push("s4 after reset", s.session("s4", t(0)).unwrap());
    // Removing a user ends their sessions; the name can be added again.
    s.put_session(&sess("s5", "carol", T0 + 9_000)).unwrap();
    log.push("remove carol", s.remove_user("carol", t(3_000)).unwrap());
    log.push(
        "remove carol again",
        s.remove_user("carol", t(3_001)).unwrap(),
    );
    log.push("remove ghost", s.remove_user("ghost", t(3_002)).unwrap());
    log.push("users after remove", s.users().unwrap());
    log.push("user carol removed", s.user("carol").unwrap());
    log.push("s5 after remove", s.session("s5", t(0)).unwrap());
    s.put_user(
        &user("carol", Role::Analyst, "$argon2id$c2", T0 + 90),
        false,
    )
    .unwrap();
    log.push("carol again", s.user("carol").unwrap());

    // What notification sinks remember.
    log.push("sink none", s.sink_state("webhook", "k").unwrap());
    s.put_sink_state("webhook", "k", "{\"v\":1}", t(1)).unwrap();
    s.put_sink_state("webhook", "k", "{\"v\":2}", t(2)).unwrap();
    s.put_sink_state("email", HOSTILE, HOSTILE, t(2)).unwrap();
    log.push("sink k", s.sink_state("webhook", "k").unwrap());
    log.push("sink hostile", s.sink_state("email", HOSTILE).unwrap());
    log.push("sink other", s.sink_state("email", "k").unwrap());
    let dl = |key: &str, at: i64| DeadLetter {
        sink: "webhook".into(),
        key: key.into(),
        attempts: 5,
        error: "timed out".into(),
        payload: HOSTILE.into(),
        at: Timestamp(at),
    };
    log.push("dead none", s.dead_letters().unwrap());
    s.put_dead_letter(&dl("z", T0 + 9)).unwrap();
    s.put_dead_letter(&dl("a", T0 + 1)).unwrap();
    log.push("dead", s.dead_letters().unwrap());

    // Threat-context documents.
    let item = |k: &str, origin: &str, json: &str| ContextItem {
        key: k.into(),
        origin: origin.into(),
        json: json.into(),
    };
    let first = [
        item("nvd:CVE-1", "a.json", "{}"),
        item("nvd:CVE-2", "a.json", "{}"),
        item(HOSTILE, "a.json", HOSTILE),
    ];
    log.push(
        "ctx first",
        s.put_context_items(ContextKind::Advisory, &first, t(1))
            .unwrap(),
    );
    log.push(
        "ctx again",
        s.put_context_items(ContextKind::Advisory, &first, t(2))
            .unwrap(),
    );
    log.push(
        "ctx update",
        s.put_context_items(
            ContextKind::Advisory,
            &[
                item("nvd:CVE-2", "b.json", "{\"v\":2}"),
                item("nvd:CVE-3", "b.json", "{}"),
                item("nvd:CVE-3", "b.json", "{\"v\":3}"),
            ],
            t(3),
        )
        .unwrap(),
    );
    s.put_context_items(
        ContextKind::Benign,
        &[item("l:10.0.0.0/8", "b.json", "{}")],
        t(3),
    )
    .unwrap();
    log.push("ctx list", s.context_items(ContextKind::Advisory).unwrap());
    log.push(
        "ctx delete",
        s.delete_context_origin(ContextKind::Advisory, "b.json")
            .unwrap(),
    );
    log.push(
        "ctx delete again",
        s.delete_context_origin(ContextKind::Advisory, "b.json")
            .unwrap(),
    );
    log.push("ctx after", s.context_items(ContextKind::Advisory).unwrap());
    log.push("ctx benign", s.context_items(ContextKind::Benign).unwrap());
    log.push(
        "ctx reimport",
        s.put_context_items(
            ContextKind::Advisory,
            &[item("nvd:CVE-3", "c.json", "{}")],
            t(4),
        )
        .unwrap(),
    );
    log.push("ctx final", s.context_items(ContextKind::Advisory).unwrap());

    // IDS alerts sent with events are kept for the events' retention.
    s.put_context_items(
        scanwatch_store::ContextKind::Ids,
        &[item("fw-1:b:0", "fw-1", "{\"old\":1}")],
        t(5),
    )
    .unwrap();
    s.put_context_items(
        scanwatch_store::ContextKind::Ids,
        &[item("fw-1:b:1", "fw-1", "{\"new\":1}")],
        t(DAY + 5),
    )
    .unwrap();

    // Retention at a day boundary: day 0 goes, day 1 stays.
    log.push("prune", s.prune(t(DAY), t(DAY)).unwrap());
    let ids = s.context_items(scanwatch_store::ContextKind::Ids).unwrap();
    assert_eq!(
        ids.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["fw-1:b:1"],
        "IDS alerts older than the events' retention are pruned"
    );
    log.push("ids after prune", ids);
    log.push(
        "events after prune",
        s.events_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
            .unwrap(),
    );
    log.push(
        "windows after prune",
        s.windows_between(Timestamp(i64::MIN), Timestamp(i64::MAX))
            .unwrap(),
    );
    log.push("latest after prune", s.latest_window().unwrap());
    log.alerts(
        "alerts after prune",
        s.alerts(Timestamp(i64::MIN), Timestamp(i64::MAX), 0)
            .unwrap(),
    );
    log.alerts(
        "alert a1 after prune",
        s.alert(a1).unwrap().into_iter().collect(),
    );
    // A batch received before the cutoff was forgotten with its events; one received
    // after is still a duplicate.
    log.push(
        "b-1 after prune",
        s.commit_batch("fw-1", "b-1", &day1[..1], t(DAY + 200))
            .unwrap(),
    );
    log.push(
        "hostile after prune",
        s.commit_batch("fw-1", HOSTILE, &day1[1..], t(DAY + 201))
            .unwrap(),
    );
    log.push("prune again", s.prune(t(DAY), t(DAY)).unwrap());

    // Aggregator commits: events, batch ids and partial aggregates together, all or
    // nothing; a batch id stored before refuses the whole commit.
    let agg = [
        ev(T0 + DAY + 7_000, "192.0.2.8", "198.18.0.8", 1025),
        ev(T0 + DAY + 8_000, "192.0.2.9", "198.18.0.8", 1025),
    ];
    let part = |commit: u64, state: &[u8]| PartialRow {
        commit,
        committed: t(DAY + 290),
        window_start: t(DAY),
        max_time: t(DAY + 8_000),
        state: state.to_vec(),
    };
    // Bytes that are not text, with quotes and a newline in them.
    let state = [0u8, 255, 10, 34, 39, 92, 200, 1];
    let c1 = AggregateCommit {
        commit: 0x8000_0000_0000_0001,
        shard_key: 1,
        received: t(DAY + 300),
        batches: vec![
            BatchPart {
                sensor: "fw-1",
                batch_id: "p:1:3",
                events: &agg[..1],
            },
            BatchPart {
                sensor: "fw-2",
                batch_id: HOSTILE,
                events: &agg[1..],
            },
        ],
        partials: vec![part(0x8000_0000_0000_0001, &state)],
    };
    s.commit_aggregate(&c1).unwrap();
    log.push(
        "stored batches",
        s.stored_batches(
            1,
            &[
                ("fw-1", "p:1:3"),
                ("fw-2", HOSTILE),
                ("fw-1", "p:1:4"),
                ("fw-2", "p:1:3"),
            ],
        )
        .unwrap(),
    );
    let c2 = AggregateCommit {
        commit: 7,
        batches: vec![
            BatchPart {
                sensor: "fw-1",
                batch_id: "p:1:4",
                events: &agg[..1],
            },
            BatchPart {
                sensor: "fw-1",
                batch_id: "p:1:3",
                events: &agg[..1],
            },
        ],
        partials: vec![part(7, b"other")],
        ..c1.clone()
    };
    log.push("commit again", s.commit_aggregate(&c2).map_err(kind).err());
    log.push(
        "nothing of the refused commit",
        s.stored_batches(1, &[("fw-1", "p:1:4")]).unwrap(),
    );
    // A good batch beside one whose event counts no packet: the whole commit is
    // refused (its good batch, its partial), as a batch alone is.
    let mut zero = agg[1].clone();
    zero.count = 0;
    let zero = [zero];
    let c3 = AggregateCommit {
        commit: 9,
        batches: vec![
            BatchPart {
                sensor: "fw-1",
                batch_id: "p:1:5",
                events: &agg[..1],
            },
            BatchPart {
                sensor: "fw-2",
                batch_id: "p:1:6",
                events: &zero,
            },
        ],
        partials: vec![part(9, b"counted no packet")],
        ..c1.clone()
    };
    let refused = s.commit_aggregate(&c3).map_err(kind).err();
    assert_eq!(refused.as_deref(), Some("EventCount(0, 0)"));
    log.push("commit count 0", refused);
    let stored = s
        .stored_batches(1, &[("fw-1", "p:1:5"), ("fw-2", "p:1:6")])
        .unwrap();
    assert_eq!(stored, [false, false]);
    log.push("nothing of the commit with count 0", stored);
    let partials = s
        .partials_between(t(DAY), t(DAY + 1), Timestamp(i64::MIN))
        .unwrap();
    assert!(partials.iter().all(|p| p.commit != 9), "{partials:?}");
    log.push(
        "partials",
        s.partials_between(t(DAY), t(DAY + 1), Timestamp(i64::MIN))
            .unwrap(),
    );
    log.push(
        "partials committed since",
        s.partials_between(t(DAY), t(DAY + 1), t(DAY + 290))
            .unwrap()
            .len(),
    );
    log.push(
        "partials committed later",
        s.partials_between(t(DAY), t(DAY + 1), t(DAY + 291))
            .unwrap(),
    );
    log.push(
        "partials outside",
        s.partials_between(t(DAY + 1), t(2 * DAY), Timestamp(i64::MIN))
            .unwrap(),
    );
    log.push(
        "events with the commit",
        s.events_between(t(DAY + 6_000), Timestamp(i64::MAX))
            .unwrap(),
    );
    log.push("sensors at end", s.sensors().unwrap());
    log.lines
}

//! Fuzz the decoding of a centre's checkpointed pipeline state (CBOR, as
//! `scanwatch_centre::checkpoint` stores it inside its checked envelope): any
//! bytes decode to a state or a reason, never panic; a state that decodes is taken
//! up by a centre's pipeline or refused (a window that does not decode), and the
//! pipeline then takes events on time and late (into windows the state had
//! closed), revises the closed windows the late ones changed (as the centre does
//! from its store: the detector's restored memory of revisable windows, surges and
//! sweeps is driven), and closes its windows, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_event::{Action, Direction, Event, Protocol, TcpFlags, Timestamp};
use scanwatch_pipeline::{Pipeline, PipelineConfig, PipelineState};

fuzz_target!(|data: &[u8]| {
    let Ok(state) = ciborium::from_reader::<PipelineState, _>(data) else {
        return;
    };
    let mut p = Pipeline::new_centre(PipelineConfig::new(30_000, 600_000));
    if p.restore(state).is_err() {
        return;
    }
    let e = Event {
        time: Timestamp(1_780_272_000_000),
        proto: Protocol::Tcp,
        src: "198.18.0.1".parse().expect("address"),
        dst: "198.18.1.1".parse().expect("address"),
        src_port: Some(40_000),
        dst_port: Some(1025),
        flags: TcpFlags(0x02),
        flags_known: true,
        icmp_type: None,
        direction: Direction::Inbound,
        action: Action::Drop,
        count: 1,
    };
    p.push(1, &e);
    // Late events into windows the restored state had closed: the trailing byte
    // picks how far back (the state's bytes are read first; what follows is free).
    let back = i64::from(data.last().copied().unwrap_or(1) % 8 + 1);
    let mut late = Vec::new();
    if let Some(cb) = p.closed_before() {
        for k in 1..=back {
            let mut l = e.clone();
            l.time = Timestamp(cb.saturating_sub(30_000 * k).saturating_add(k));
            l.src = std::net::Ipv4Addr::new(198, 18, 2, k as u8).into();
            p.push(2, &l);
            late.push(l);
        }
    }
    for ws in p.take_dirty() {
        let w = p.window_of(
            late.iter()
                .filter(|l| l.time.0 >= ws && l.time.0 < ws.saturating_add(30_000))
                .map(|l| (2, l)),
        );
        p.revise(ws, &w, &mut |_| {});
    }
    p.close_through(e.time.0 + 60_000, &mut |_| {});
    let _ = p.state();
});

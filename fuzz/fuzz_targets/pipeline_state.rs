//! Fuzz the decoding of a centre's checkpointed pipeline state (CBOR, as
//! `scanwatch_centre::checkpoint` stores it inside its checked envelope): any
//! bytes decode to a state or a reason, never panic; a state that decodes is taken
//! up by a centre's pipeline or refused (a window that does not decode), and the
//! pipeline then takes events and closes its windows without panicking.
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
    p.close_through(e.time.0 + 60_000, &mut |_| {});
    let _ = p.state();
});

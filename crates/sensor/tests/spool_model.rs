//! Model test of the spool: random sequences of append, send-and-acknowledge, failed
//! send, crash (drop without any cleanup, sometimes leaving a half-written file),
//! corruption and restart. Invariants: nothing acknowledged is ever offered again,
//! nothing unacknowledged is lost (except batches whose bytes were corrupted on disk,
//! which are counted), batches come out in order, and positions never go back.
#![allow(clippy::unwrap_used)] // a test may panic on a broken setup

use std::collections::BTreeMap;

use proptest::prelude::*;
use scanwatch_sensor::spool::{Positions, Spool};

#[derive(Clone, Debug)]
enum Op {
    Append(u8),
    SendOk,
    SendFail,
    CrashMidWrite,
    Restart,
    Corrupt,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..20).prop_map(Op::Append),
        3 => Just(Op::SendOk),
        1 => Just(Op::SendFail),
        1 => Just(Op::CrashMidWrite),
        1 => Just(Op::Restart),
        1 => Just(Op::Corrupt),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spool_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        // Model: batches (by body) not yet acknowledged, in order; acknowledged bodies.
        let mut waiting: Vec<String> = Vec::new();
        let mut acked: Vec<String> = Vec::new();
        let mut offset = 0u64;
        let mut corrupted = 0u64;
        let mut counter = 0u32;
        for op in ops {
            match op {
                Op::Append(n) => {
                    counter += 1;
                    let body: String = (0..n).map(|i| format!("{{\"n\":{counter},\"i\":{i}}}\n")).collect();
                    offset += u64::from(n);
                    let mut pos = Positions::new();
                    pos.insert("/var/log/fw.log".into(), (7, offset));
                    prop_assert!(spool.append(&body, n as usize, &pos).unwrap().is_some());
                    waiting.push(body);
                }
                Op::SendOk => {
                    if let Some(b) = spool.oldest() {
                        prop_assert!(!acked.contains(&b.body), "an acknowledged batch was offered again");
                        prop_assert_eq!(Some(&b.body), waiting.first(), "batches leave in order");
                        spool.ack(b.seq).unwrap();
                        acked.push(waiting.remove(0));
                    } else {
                        prop_assert!(waiting.is_empty(), "a waiting batch was lost");
                    }
                }
                Op::SendFail => {
                    let _ = spool.oldest();
                }
                Op::CrashMidWrite => {
                    std::fs::write(dir.path().join(".batch-99999999999999999999.jsonl.tmp"), b"{\"v\":1,").unwrap();
                    drop(spool);
                    spool = Spool::open(dir.path(), 1 << 20).unwrap();
                }
                Op::Restart => {
                    drop(spool);
                    spool = Spool::open(dir.path(), 1 << 20).unwrap();
                }
                Op::Corrupt => {
                    // Flip a byte in the newest waiting batch file, then restart.
                    let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path())
                        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("batch-")).collect();
                    files.sort();
                    if let Some(f) = files.last() {
                        let mut bytes = std::fs::read(f).unwrap();
                        let last = bytes.len() - 2;
                        bytes[last] ^= 0x20;
                        std::fs::write(f, bytes).unwrap();
                        drop(spool);
                        spool = Spool::open(dir.path(), 1 << 20).unwrap();
                        corrupted += 1;
                        prop_assert_eq!(spool.stats.corrupt, 1, "a corrupt batch is counted");
                        waiting.pop();
                    }
                }
            }
            // Positions never go back.
            let pos: BTreeMap<_, _> = spool.positions().clone();
            if let Some(&(_, off)) = pos.get("/var/log/fw.log") {
                prop_assert!(off <= offset);
            }
            prop_assert_eq!(spool.backlog().0, waiting.len());
        }
        // Drain: exactly the waiting batches come out, in order, then nothing.
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for body in &waiting {
            let b = spool.oldest().unwrap();
            prop_assert_eq!(&b.body, body);
            spool.ack(b.seq).unwrap();
        }
        prop_assert!(spool.oldest().is_none());
        let _ = corrupted;
    }
}

#[test]
fn full_spool_refuses_without_writing_and_ack_must_be_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 300).unwrap();
    let body = "x".repeat(200);
    let first = s.append(&body, 1, &Positions::new()).unwrap().unwrap();
    assert_eq!(
        s.append(&body, 1, &Positions::new()).unwrap(),
        None,
        "over the byte limit"
    );
    assert_eq!(s.stats.full, 1);
    assert_eq!(s.backlog().0, 1);
    s.ack(first).unwrap();
    let a = s.append(&body, 1, &Positions::new()).unwrap().unwrap();
    assert!(a > first);
    let b = {
        let mut big = Spool::open(dir.path(), 1 << 20).unwrap();
        let b = big.append(&body, 1, &Positions::new()).unwrap().unwrap();
        assert!(big.ack(b).is_err(), "acknowledging out of order is refused");
        b
    };
    assert!(b > a);
    // Batch ids are unique per spool and stable across reopen.
    let s2 = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s2.oldest().unwrap().id, format!("{}-{a}", s2.id()));
}

#[test]
fn a_batch_set_aside_leaves_the_queue_and_is_kept_under_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let a = s
        .append("bad batch\n", 1, &Positions::new())
        .unwrap()
        .unwrap();
    let b = s
        .append("good batch\n", 1, &Positions::new())
        .unwrap()
        .unwrap();
    s.set_aside(a).unwrap();
    assert_eq!(s.backlog().0, 1);
    assert_eq!(s.oldest().unwrap().seq, b);
    let kept: Vec<String> = std::fs::read_dir(dir.path().join("rejected"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].ends_with("bad batch\n"), "{kept:?}");
    // Reopened, the set-aside batch is not sent again.
    let s2 = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s2.oldest().unwrap().seq, b);
    assert!(
        s.set_aside(b + 7).is_err(),
        "only the oldest can be set aside"
    );
}

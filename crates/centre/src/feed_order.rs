//! The order a centre feeds what it has answered. A batch is answered once it is
//! committed, before its feed; the sensor's next batch, its heartbeats and
//! anyone's reads come after that answer, so they must come after that feed too.
//! A place in the order ([`Ticket`]) is taken when a batch is committed (under the
//! store's lock, so the feeds follow the commits) or a heartbeat arrives; each
//! waits for the places before it. Commits and parsing of other batches go on
//! meanwhile: only the feeds follow one another, as they did under the engine's
//! lock.
//!
//! Hand-written (a counter and a condition variable): a ticket lock with a wait
//! for "everything given out so far", which no queue or lock crate offers.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Places given out and places done.
#[derive(Default)]
pub(crate) struct FeedOrder {
    turns: Mutex<Turns>,
    moved: Condvar,
}

#[derive(Default)]
struct Turns {
    issued: u64,
    done: u64,
}

impl FeedOrder {
    fn turns(&self) -> MutexGuard<'_, Turns> {
        // The counters stay consistent: no code panics while holding them.
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next place, after every place given out before.
    pub(crate) fn ticket(&self) -> Ticket<'_> {
        let mut t = self.turns();
        let n = t.issued;
        t.issued += 1;
        Ticket { order: self, n }
    }

    /// Returns once every place given out before this call is done.
    pub(crate) fn settle(&self) {
        let mut t = self.turns();
        let upto = t.issued;
        while t.done < upto {
            t = self.moved.wait(t).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn wait_for(&self, n: u64) {
        let mut t = self.turns();
        while t.done < n {
            t = self.moved.wait(t).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A place in the feed order; done when dropped (also on an error or a panic, so
/// the places after it never wait for nothing).
pub(crate) struct Ticket<'a> {
    order: &'a FeedOrder,
    n: u64,
}

impl Ticket<'_> {
    /// Waits until every place before this one is done.
    pub(crate) fn wait_turn(&self) {
        self.order.wait_for(self.n);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // Done in order: a place dropped before its turn waits for it.
        self.order.wait_for(self.n);
        let mut t = self.order.turns();
        t.done = self.n + 1;
        drop(t);
        self.order.moved.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn places_are_done_in_the_order_given_and_settle_waits_for_them() {
        let order = FeedOrder::default();
        let log = Mutex::new(Vec::new());
        let tickets: Vec<Ticket<'_>> = (0..8).map(|_| order.ticket()).collect();
        // Their holders start in reverse order, and one gives up before its turn.
        std::thread::scope(|s| {
            for t in tickets.into_iter().rev() {
                let log = &log;
                s.spawn(move || {
                    if t.n == 3 {
                        return; // dropped: done in its turn all the same
                    }
                    t.wait_turn();
                    log.lock().unwrap().push(t.n);
                });
            }
        });
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 4, 5, 6, 7]);
        // Settling waits for a place given out before it, not for later ones.
        let held = order.ticket();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                order.settle();
                tx.send(()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            drop(held);
            rx.recv_timeout(Duration::from_secs(30)).unwrap();
        });
        order.settle();
    }
}

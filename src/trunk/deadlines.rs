//! The timer table of the all-trunks sets (registrations, keepalives): one min-heap of
//! `(deadline, key)` for thousands of machines, so the shell sleeps until the earliest and
//! a wake-up touches only the machines that are due.
//!
//! Re-arming a key pushes a new item and leaves the old one in the heap: each key keeps
//! the deadline it armed last (its `armed` record, beside the machine), and an item popped
//! that is not that deadline is stale and skipped. No search through the heap, ever.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Deadlines<K> {
    pub(crate) fn new() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
        }
    }

    /// Arms `key` to wake at `at`, unless `armed` (its record) says it already does. With
    /// `at` `None` nothing changes: a deadline armed before still wakes the key.
    pub(crate) fn arm(
        &mut self,
        armed: &mut Option<Instant>,
        at: Option<Instant>,
        key: impl FnOnce() -> K,
    ) {
        if let Some(at) = at
            && *armed != Some(at)
        {
            *armed = Some(at);
            self.heap.push(Reverse((at, key())));
        }
    }

    /// The earliest deadline. It may be stale: the shell then wakes early and
    /// [`Deadlines::pop_due`] skips it.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next key due at `now`, earliest first. `current(key, at)` says whether `at`
    /// is still the key's armed deadline and if so disarms it ([`disarm`] on its record;
    /// false for a key gone meanwhile): items it refuses are stale and skipped.
    pub(crate) fn pop_due(
        &mut self,
        now: Instant,
        mut current: impl FnMut(&K, Instant) -> bool,
    ) -> Option<K> {
        while let Some(Reverse((at, _))) = self.heap.peek()
            && *at <= now
        {
            let Reverse((at, key)) = self.heap.pop()?;
            if current(&key, at) {
                return Some(key);
            }
        }
        None
    }
}

/// Whether `at` is the deadline a key's record `armed` holds; if so, clears the record.
pub(crate) fn disarm(armed: &mut Option<Instant>, at: Instant) -> bool {
    let current = *armed == Some(at);
    if current {
        *armed = None;
    }
    current
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    const S: Duration = Duration::from_secs(1);

    /// Keys 0 and 1 armed `first` and `second` seconds after the epoch, which it returns.
    fn two_keys(first: u32, second: u32) -> (Instant, Deadlines<usize>, [Option<Instant>; 2]) {
        let t0 = epoch();
        let mut deadlines = Deadlines::new();
        let mut armed = [None, None];
        deadlines.arm(&mut armed[0], Some(t0 + first * S), || 0);
        deadlines.arm(&mut armed[1], Some(t0 + second * S), || 1);
        (t0, deadlines, armed)
    }

    #[test]
    fn only_the_deadline_armed_last_wakes_its_key_and_only_once() {
        let (t0, mut deadlines, mut armed) = two_keys(3, 2);
        // Re-armed earlier: the item at 3 s is stale. Armed again at the same time: no item.
        deadlines.arm(&mut armed[0], Some(t0 + S), || 0);
        deadlines.arm(&mut armed[0], Some(t0 + S), || 0);
        deadlines.arm(&mut armed[1], None, || 1);
        assert_eq!(armed, [Some(t0 + S), Some(t0 + 2 * S)]);
        assert_eq!(deadlines.poll_timeout(), Some(t0 + S));
        let mut popped = Vec::new();
        let now = t0 + 5 * S;
        while let Some(key) = deadlines.pop_due(now, |key, at| disarm(&mut armed[*key], at)) {
            popped.push(key);
        }
        assert_eq!(popped, [0, 1]);
        assert_eq!(armed, [None, None]);
        assert_eq!(deadlines.poll_timeout(), None);
    }

    #[test]
    fn nothing_is_due_before_its_deadline_and_gone_keys_are_skipped() {
        let (t0, mut deadlines, mut armed) = two_keys(1, 2);
        let mut current = |key: &usize, at| disarm(&mut armed[*key], at);
        assert_eq!(deadlines.pop_due(t0, &mut current), None);
        // Key 0 is gone: its item is dropped, and key 1 is not yet due.
        let mut current = |key: &usize, at| *key != 0 && disarm(&mut armed[*key], at);
        assert_eq!(deadlines.pop_due(t0 + S, &mut current), None);
        assert_eq!(deadlines.poll_timeout(), Some(t0 + 2 * S));
        assert_eq!(deadlines.pop_due(t0 + 2 * S, &mut current), Some(1));
    }
}

//! The calls in progress as a slab: each call has a small [`Id`] (slot and generation), an
//! index finds it by Call-ID, and one deadline heap holds at most one live entry per call,
//! keyed by that id rather than by the Call-ID's bytes.
//!
//! A call is *armed* at its one live heap entry. Arming it for another instant pushes a
//! new entry and leaves the old one stale, as does removing an armed call; stale entries
//! are skipped when they pop and dropped from the top after every change ([`Table::purge`]),
//! so the heap's top is always a live deadline and the daemon wakes for nothing else. (A
//! later instant once pushed nothing and let the old entry pop early: every call's Timer
//! A, cancelled by the callee's first response a millisecond after it was armed, then
//! woke the control loop once for nothing, most of its wakeups at 1,500 calls/s.) The heap
//! is rebuilt from the live calls once stale entries outnumber those, so a call that ends
//! long before a far deadline (`max_call_duration`, Timer C) does not leave that entry
//! behind for hours.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// A call's place in the table; a removed call's id never names a later call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Id {
    slot: u32,
    generation: u32,
}

struct Slot<T> {
    generation: u32,
    /// The earliest live heap entry of this slot's call.
    armed: Option<Instant>,
    /// The Call-ID (shared with the index) and the call.
    entry: Option<(Arc<[u8]>, T)>,
}

/// Stale heap entries tolerated beyond one per live call before the heap is rebuilt.
const STALE_SLACK: usize = 1024;

pub(super) struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    by_call_id: HashMap<Arc<[u8]>, Id>,
    deadlines: BinaryHeap<Reverse<(Instant, Id)>>,
    stale: usize,
}

impl<T> Table<T> {
    pub(super) fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            by_call_id: HashMap::new(),
            deadlines: BinaryHeap::new(),
            stale: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_call_id.len()
    }

    pub(super) fn find(&self, call_id: &[u8]) -> Option<Id> {
        self.by_call_id.get(call_id).copied()
    }

    /// Adds a call under a Call-ID the table does not hold yet.
    pub(super) fn insert(&mut self, call_id: &[u8], value: T) -> Id {
        let call_id: Arc<[u8]> = Arc::from(call_id);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    armed: None,
                    entry: None,
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 calls")
            }
        };
        let place = &mut self.slots[slot as usize];
        debug_assert!(place.entry.is_none() && place.armed.is_none());
        let id = Id {
            slot,
            generation: place.generation,
        };
        place.entry = Some((Arc::clone(&call_id), value));
        let previous = self.by_call_id.insert(call_id, id);
        debug_assert!(previous.is_none(), "Call-ID already in the table");
        id
    }

    fn slot(&self, id: Id) -> Option<&Slot<T>> {
        self.slots
            .get(id.slot as usize)
            .filter(|slot| slot.generation == id.generation && slot.entry.is_some())
    }

    pub(super) fn get(&self, id: Id) -> &T {
        let slot = self.slot(id).expect("a live call's id");
        &slot.entry.as_ref().expect("live").1
    }

    pub(super) fn get_mut(&mut self, id: Id) -> &mut T {
        let slot = &mut self.slots[id.slot as usize];
        assert_eq!(slot.generation, id.generation, "a live call's id");
        &mut slot.entry.as_mut().expect("a live call's id").1
    }

    /// Forgets a call: its Call-ID (the index's own copy) and the call.
    pub(super) fn remove(&mut self, id: Id) -> (Arc<[u8]>, T) {
        let slot = &mut self.slots[id.slot as usize];
        assert_eq!(slot.generation, id.generation, "a live call's id");
        let (call_id, value) = slot.entry.take().expect("a live call's id");
        if slot.armed.take().is_some() {
            self.stale += 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.slot);
        let (key, _) = self.by_call_id.remove_entry(&call_id[..]).expect("indexed");
        drop(call_id);
        (key, value)
    }

    /// The ids of the calls `matching` accepts.
    pub(super) fn ids(&self, matching: impl Fn(&T) -> bool) -> Vec<Id> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let (_, value) = slot.entry.as_ref()?;
                matching(value).then_some(Id {
                    slot: index as u32,
                    generation: slot.generation,
                })
            })
            .collect()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter_map(|slot| slot.entry.as_ref().map(|(_, value)| value))
    }

    /// Wakes the call at `at` (and not at the instant it was armed for before).
    pub(super) fn arm(&mut self, id: Id, at: Instant) {
        let slot = &mut self.slots[id.slot as usize];
        debug_assert_eq!(slot.generation, id.generation);
        match slot.armed {
            Some(armed) if armed == at => return,
            Some(_) => self.stale += 1,
            None => {}
        }
        slot.armed = Some(at);
        self.deadlines.push(Reverse((at, id)));
        if self.stale > self.len() + STALE_SLACK {
            self.rebuild();
        }
    }

    /// The next call whose entry is due at `now`; it is no longer armed.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Id> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            match self.slots.get_mut(id.slot as usize) {
                Some(slot) if slot.generation == id.generation && slot.armed == Some(at) => {
                    slot.armed = None;
                    return Some(id);
                }
                _ => self.stale = self.stale.saturating_sub(1),
            }
        }
        None
    }

    /// The earliest entry in the heap: a live one after [`Table::purge`].
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Drops the stale entries at the top, so that [`Table::poll_timeout`] names a live one.
    pub(super) fn purge(&mut self) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            let live = self
                .slots
                .get(id.slot as usize)
                .is_some_and(|slot| slot.generation == id.generation && slot.armed == Some(at));
            if live {
                break;
            }
            self.deadlines.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    fn rebuild(&mut self) {
        let live = self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let id = Id {
                slot: u32::try_from(index).ok()?,
                generation: slot.generation,
            };
            Some(Reverse((slot.armed?, id)))
        });
        self.deadlines = live.collect();
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn the_last_deadline_armed_wins_and_the_top_is_live_after_a_purge() {
        let t0 = epoch();
        let mut table = Table::new();
        let a = table.insert(b"a@x", 1);
        let b = table.insert(b"b@x", 2);
        table.arm(b, t0 + Duration::from_secs(10));
        // Timer A, then the callee's first response moves the call to Timer C.
        table.arm(a, t0 + Duration::from_millis(500));
        table.arm(a, t0 + Duration::from_secs(181));
        assert_eq!(table.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        table.purge();
        assert_eq!(table.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(table.pop_due(t0 + Duration::from_secs(9)), None);
        assert_eq!(table.pop_due(t0 + Duration::from_secs(10)), Some(b));
        assert_eq!(table.poll_timeout(), Some(t0 + Duration::from_secs(181)));
        // Arming the same instant again pushes nothing.
        table.arm(a, t0 + Duration::from_secs(181));
        assert_eq!(table.deadlines.len(), 1);
        table.arm(a, t0 + Duration::from_millis(500));
        assert_eq!(table.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(table.pop_due(t0 + Duration::from_millis(499)), None);
        assert_eq!(table.pop_due(t0 + Duration::from_secs(2)), Some(a));
        // The superseded 181 s entry is stale: dropped by the purge after the wakeup.
        assert_eq!(table.pop_due(t0 + Duration::from_secs(2)), None);
        table.purge();
        assert!(table.deadlines.is_empty());
        assert_eq!(table.stale, 0);
    }

    #[test]
    fn a_removed_calls_id_and_entries_name_nothing_later() {
        let t0 = epoch();
        let mut table = Table::new();
        let a = table.insert(b"a@x", 1);
        table.arm(a, t0 + Duration::from_secs(5));
        let (call_id, value) = table.remove(a);
        assert_eq!((&call_id[..], value), (&b"a@x"[..], 1));
        let b = table.insert(b"b@x", 2);
        assert_ne!(a, b, "same slot, new generation");
        assert_eq!(table.find(b"b@x"), Some(b));
        assert_eq!(table.find(b"a@x"), None);
        table.purge();
        assert_eq!(table.poll_timeout(), None);
        assert_eq!(table.pop_due(t0 + Duration::from_secs(9)), None);
        assert_eq!(*table.get(b), 2);
    }

    #[test]
    fn stale_entries_are_bounded_by_the_live_calls() {
        let t0 = epoch();
        let mut table = Table::new();
        let far = t0 + Duration::from_secs(4 * 3600);
        for round in 0..10_000u32 {
            let id = table.insert(&round.to_be_bytes(), round);
            table.arm(id, far);
            table.arm(id, t0 + Duration::from_secs(32));
            table.remove(id);
        }
        assert_eq!(table.len(), 0);
        assert!(
            table.deadlines.len() <= STALE_SLACK + 1,
            "{}",
            table.deadlines.len()
        );
    }
}

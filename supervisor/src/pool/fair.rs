//! Execution slots, shared fairly between keys.
//!
//! `workers.max_concurrent` slots; a request takes one for its execution. When none is free,
//! requests wait in one queue per key, and a freed slot goes to the keys in turn (round
//! robin): a key with a hundred queued requests delays another key's first request by at most
//! one execution per key ahead of it, not by its hundred. A key's `max_concurrent` caps the
//! slots it holds; its requests beyond that wait even when slots are free.
//!
//! The queue holds at most `workers.queue_size` requests in all. When it is full, a request
//! of a key with fewer queued requests than the key with the most pushes out that key's newest
//! one (answered BUSY), so a flood from one key cannot shut the others out of the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The queue is full, the request was pushed out of it, or it waited its time out.
    Busy,
    /// The pool is shutting down.
    Closed,
}

/// Who asks for a slot: a key's name and how many slots it may hold at once.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The key's name.
    pub name: Arc<str>,
    /// The most slots it may hold (`None`: no cap of its own).
    pub max_concurrent: Option<usize>,
}

impl Tenant {
    /// A tenant with no cap of its own.
    pub fn named(name: &str) -> Tenant {
        Tenant {
            name: name.into(),
            max_concurrent: None,
        }
    }
}

/// The slots and the queues of the keys waiting for them.
pub struct Slots {
    state: Arc<Mutex<State>>,
    queue_size: usize,
    queue_timeout: Duration,
}

#[derive(Default)]
struct State {
    free: usize,
    closed: bool,
    queued: usize,
    tenants: HashMap<Arc<str>, Queue>,
    /// Keys with waiting requests, in the order they are served.
    turn: VecDeque<Arc<str>>,
    next_ticket: u64,
}

#[derive(Default)]
struct Queue {
    held: usize,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    ticket: u64,
    cap: usize,
    tx: oneshot::Sender<Result<Permit, SlotError>>,
}

/// One slot, given back when dropped.
pub struct Permit {
    state: Arc<Mutex<State>>,
    key: Arc<str>,
    armed: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = lock(&self.state);
        st.free += 1;
        if let Some(q) = st.tenants.get_mut(&self.key) {
            q.held = q.held.saturating_sub(1);
        }
        st.forget_if_idle(&self.key);
        st.dispatch(&self.state);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn forget_if_idle(&mut self, key: &Arc<str>) {
        if self
            .tenants
            .get(key)
            .is_some_and(|q| q.held == 0 && q.waiting.is_empty())
        {
            self.tenants.remove(key);
        }
    }

    /// Gives free slots to waiting requests, one key after another.
    fn dispatch(&mut self, state: &Arc<Mutex<State>>) {
        while self.free > 0 {
            let mut picked = None;
            for _ in 0..self.turn.len() {
                let Some(key) = self.turn.pop_front() else {
                    break;
                };
                let Some(q) = self.tenants.get(&key) else {
                    continue;
                };
                match q.waiting.front() {
                    None => continue,
                    Some(w) if q.held < w.cap => {
                        picked = Some(key);
                        break;
                    }
                    // At its cap: it keeps its place in the turn for a later slot.
                    Some(_) => self.turn.push_back(key),
                }
            }
            let Some(key) = picked else {
                return;
            };
            let Some(q) = self.tenants.get_mut(&key) else {
                continue;
            };
            let Some(waiter) = q.waiting.pop_front() else {
                continue;
            };
            self.queued -= 1;
            let more = !q.waiting.is_empty();
            self.free -= 1;
            q.held += 1;
            if more {
                self.turn.push_back(Arc::clone(&key));
            }
            let permit = Permit {
                state: Arc::clone(state),
                key: Arc::clone(&key),
                armed: true,
            };
            if let Err(Ok(mut unsent)) = waiter.tx.send(Ok(permit)) {
                // The request is gone: the slot was never taken.
                unsent.armed = false;
                self.free += 1;
                if let Some(q) = self.tenants.get_mut(&key) {
                    q.held -= 1;
                }
                self.forget_if_idle(&key);
            }
        }
    }

    /// Makes room in a full queue for a request of `key`: pushes out the newest request of
    /// the key with the most queued, if that is more than `key` would have. Whether it did.
    fn push_out_for(&mut self, key: &Arc<str>) -> bool {
        let mine = self.tenants.get(key).map_or(0, |q| q.waiting.len());
        let Some((victim, _)) = self
            .tenants
            .iter()
            .map(|(k, q)| (Arc::clone(k), q.waiting.len()))
            .filter(|(_, n)| *n > mine + 1)
            .max_by_key(|(_, n)| *n)
        else {
            return false;
        };
        let Some(w) = self
            .tenants
            .get_mut(&victim)
            .and_then(|q| q.waiting.pop_back())
        else {
            return false;
        };
        self.queued -= 1;
        let _ = w.tx.send(Err(SlotError::Busy));
        true
    }
}

/// Takes a queued request out of its queue when its wait ends without a slot.
struct Leave<'a> {
    state: &'a Arc<Mutex<State>>,
    key: Arc<str>,
    ticket: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut st = lock(self.state);
        let Some(q) = st.tenants.get_mut(&self.key) else {
            return;
        };
        let before = q.waiting.len();
        q.waiting.retain(|w| w.ticket != self.ticket);
        if q.waiting.len() < before {
            st.queued -= 1;
        }
        st.forget_if_idle(&self.key);
    }
}

impl Slots {
    /// `slots` slots; at most `queue_size` requests wait, each at most `queue_timeout`.
    pub fn new(slots: usize, queue_size: usize, queue_timeout: Duration) -> Slots {
        Slots {
            state: Arc::new(Mutex::new(State {
                free: slots,
                ..State::default()
            })),
            queue_size,
            queue_timeout,
        }
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        lock(&self.state).queued
    }

    /// Takes a slot for `tenant` now when one is free to it, else `None` (nothing queued).
    fn try_acquire(&self, tenant: &Tenant) -> Result<Option<Permit>, SlotError> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err(SlotError::Closed);
        }
        let cap = tenant.max_concurrent.unwrap_or(usize::MAX);
        let free = st.free;
        let q = st.tenants.entry(Arc::clone(&tenant.name)).or_default();
        if free > 0 && q.held < cap && q.waiting.is_empty() {
            q.held += 1;
            st.free -= 1;
            return Ok(Some(Permit {
                state: Arc::clone(&self.state),
                key: Arc::clone(&tenant.name),
                armed: true,
            }));
        }
        st.forget_if_idle(&tenant.name);
        Ok(None)
    }

    /// Takes a slot for `tenant`, waiting in its key's queue when none is free to it.
    pub async fn acquire(&self, tenant: &Tenant) -> Result<Permit, SlotError> {
        if let Some(permit) = self.try_acquire(tenant)? {
            return Ok(permit);
        }
        let cap = tenant.max_concurrent.unwrap_or(usize::MAX);
        let (tx, rx) = oneshot::channel();
        let ticket = {
            let mut st = lock(&self.state);
            if st.closed {
                return Err(SlotError::Closed);
            }
            if st.queued >= self.queue_size && !st.push_out_for(&tenant.name) {
                return Err(SlotError::Busy);
            }
            st.next_ticket += 1;
            let ticket = st.next_ticket;
            let q = st.tenants.entry(Arc::clone(&tenant.name)).or_default();
            let first = q.waiting.is_empty();
            q.waiting.push_back(Waiter { ticket, cap, tx });
            st.queued += 1;
            if first {
                st.turn.push_back(Arc::clone(&tenant.name));
            }
            // A slot may be free to this key (it was at its cap, or others are).
            st.dispatch(&self.state);
            ticket
        };
        let _leave = Leave {
            state: &self.state,
            key: Arc::clone(&tenant.name),
            ticket,
        };
        match tokio::time::timeout(self.queue_timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(SlotError::Closed),
            Err(_) => Err(SlotError::Busy),
        }
    }

    /// Refuses every waiting and later request with [`SlotError::Closed`].
    pub fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        for q in st.tenants.values_mut() {
            for w in q.waiting.drain(..) {
                let _ = w.tx.send(Err(SlotError::Closed));
            }
        }
        st.queued = 0;
        st.turn.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, cap: Option<usize>) -> Tenant {
        Tenant {
            name: name.into(),
            max_concurrent: cap,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keys_are_served_in_turn_and_not_in_arrival_order() {
        let slots = Arc::new(Slots::new(1, 100, Duration::from_secs(5)));
        let a = tenant("a", None);
        let b = tenant("b", None);
        let held = slots.acquire(&a).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Ten requests of a queue first, then one of b.
        for (i, t) in (0..10).map(|i| (i, a.clone())).chain([(99, b.clone())]) {
            let (slots, order) = (Arc::clone(&slots), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let p = slots.acquire(&t).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(p);
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.queued(), 11);
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let at = order.iter().position(|i| *i == 99).unwrap();
        assert!(at <= 1, "b waited behind a's queue: {order:?}");
        assert_eq!(slots.queued(), 0);
        assert!(lock(&slots.state).tenants.is_empty());
        assert_eq!(lock(&slots.state).free, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_key_holds_at_most_its_cap_while_others_use_the_rest() {
        let slots = Slots::new(3, 10, Duration::from_millis(50));
        let a = tenant("a", Some(1));
        let first = slots.acquire(&a).await.unwrap();
        // a is at its cap: its second request waits (and times out) though two slots are free.
        assert_eq!(slots.acquire(&a).await.err(), Some(SlotError::Busy));
        let b1 = slots.acquire(&tenant("b", None)).await.unwrap();
        let b2 = slots.acquire(&tenant("b", None)).await.unwrap();
        drop((first, b1, b2));
        assert_eq!(lock(&slots.state).free, 3);
        assert_eq!(slots.queued(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_pushes_out_the_flooding_key_not_the_newcomer() {
        let slots = Arc::new(Slots::new(1, 3, Duration::from_secs(5)));
        let a = tenant("a", None);
        let held = slots.acquire(&a).await.unwrap();
        let mut floods = Vec::new();
        for _ in 0..3 {
            let (slots, a) = (Arc::clone(&slots), a.clone());
            floods.push(tokio::spawn(
                async move { slots.acquire(&a).await.map(drop) },
            ));
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.queued(), 3);
        // a's fourth request finds the queue full and is refused; b's first gets a place.
        assert_eq!(slots.acquire(&a).await.err(), Some(SlotError::Busy));
        let b = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.acquire(&tenant("b", None)).await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert_eq!(slots.queued(), 3);
        drop(held);
        b.await.unwrap().unwrap();
        let outcomes: Vec<_> = futures_util::future::join_all(floods)
            .await
            .into_iter()
            .map(|r| r.unwrap().is_ok())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|ok| !**ok).count(),
            1,
            "{outcomes:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_that_gives_up_leaves_the_queue_and_closing_refuses_the_rest() {
        let slots = Arc::new(Slots::new(1, 10, Duration::from_secs(5)));
        let held = slots.acquire(&tenant("a", None)).await.unwrap();
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), slots.acquire(&tenant("b", None)))
                .await;
        assert!(gave_up.is_err());
        assert_eq!(slots.queued(), 0);
        let waiting = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.acquire(&tenant("c", None)).await.map(drop) })
        };
        tokio::task::yield_now().await;
        slots.close();
        assert_eq!(waiting.await.unwrap(), Err(SlotError::Closed));
        drop(held);
        assert_eq!(
            slots.acquire(&tenant("a", None)).await.err(),
            Some(SlotError::Closed)
        );
    }
}

//! The revocation bus: the log's events (revocations, reinstatements,
//! risk-level changes, signals) pushed to subscribers of
//! `GET /v1/events/stream` (Server-Sent Events) and `GET /v1/events/ws`
//! (WebSocket).
//!
//! The log is the event store. An event *is* its entry, its id is the
//! entry's index, and a subscriber resumes after any index it has seen, so
//! an event can be late but never lost, repeated or reordered. There is no
//! broadcast channel, which would have to drop events for a subscriber
//! that falls behind, or buffer them without bound:
//!
//! - one feed task per bus waits on [`Log::watch_head`], reads each new
//!   event once (the event index, [`Log::events`], then its leaf) and keeps
//!   the last [`BusConfig::ring_events`] of them (at most
//!   [`BusConfig::ring_bytes`]), encoded once for SSE and
//!   for WebSocket, in a ring whose tail says up to where the log has been
//!   read; a watch wakes the waiting subscriptions when events were added
//!   (not on every commit: most commits hold no event, and waking a
//!   thousand idle subscribers for each would cost the appends their CPU);
//! - each [`Subscription`] keeps its own cursor (the next index to look
//!   at). Inside the ring it takes shared references to encoded events;
//!   behind it (a resume from long ago, or a subscriber slower than the
//!   ring is long) it reads pages from the log on the blocking pool, then
//!   carries on from the ring;
//! - a subscription yields one event at a time, as fast as its connection
//!   takes them (the HTTP body and the WebSocket are polled only when the
//!   socket can take more), so a slow subscriber holds at most one page of
//!   events, never slows the feed, and appends never wait for anyone.
//!
//! Subscribers are bounded ([`BusConfig::max_subscribers`]; one more is
//! answered 503 `too_many_subscribers`), and [`RevocationBus::close`] ends
//! every subscription, so the server's graceful shutdown is not held open
//! by streams that never end.

use std::collections::VecDeque;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use ledger_core::views::events::EventRef;
use ledger_core::Log;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use verifier::wire::{ErrorCode, Event, EventType};
use verifier::AgentId;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most events a subscription takes in one step (from the ring or the log).
const PAGE_EVENTS: usize = 256;

/// Most leaf bytes read from the log in one page (at least one event):
/// what a subscription that fell behind holds, decoded, at most.
const PAGE_BYTES: usize = 256 * 1024;

/// Most ring events a subscription looks at while holding the ring's lock.
const RING_SCAN: usize = 1024;

/// Limits of a [`RevocationBus`].
#[derive(Clone, Copy, Debug)]
pub struct BusConfig {
    /// Recent events kept in memory, encoded, for subscribers that keep up.
    pub ring_events: usize,
    /// Most bytes of encoded events in the ring (signals may carry large
    /// evidence): the older ones go first.
    pub ring_bytes: usize,
    /// Most subscriptions at once.
    pub max_subscribers: usize,
    /// Interval of SSE keep-alive comments and WebSocket pings.
    pub keepalive: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { ring_events: 4096, ring_bytes: 32 << 20, max_subscribers: 512, keepalive: Duration::from_secs(15) }
    }
}

/// Which events a subscriber wants: all of them, or those of some types,
/// about one agent, or about agents of one trust domain (all conditions
/// given must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The types wanted; `None` for all.
    pub types: Option<Vec<EventType>>,
    /// The one agent wanted.
    pub agent: Option<AgentId>,
    /// The one trust domain wanted.
    pub trust_domain: Option<String>,
}

impl EventFilter {
    /// Whether an event of `event_type` about `agent` (empty: a signal about
    /// a code hash, which no agent or trust-domain filter matches) passes.
    pub fn matches(&self, event_type: EventType, agent: &str) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&event_type))
            && self.agent.as_ref().is_none_or(|a| a.as_str() == agent)
            && self.trust_domain.as_deref().is_none_or(|td| trust_domain_of(agent) == Some(td))
    }
}

/// The trust domain of a stored agent id.
fn trust_domain_of(agent: &str) -> Option<&str> {
    let rest = agent.strip_prefix("spiffe://")?;
    rest.split('/').next().filter(|td| !td.is_empty())
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the next event appended (live from the current head).
    Head,
    /// With the first event of the log.
    First,
    /// Right after the entry at this index.
    After(u64),
}

/// One event, decoded once and encoded once for every subscriber.
#[derive(Debug)]
pub struct BusEvent {
    /// The entry's index (the event's id).
    pub index: u64,
    /// Its type.
    pub event_type: EventType,
    /// The agent it is about (empty for a signal about a code hash).
    pub agent: String,
    /// The SSE frame: `id`, `event` and `data` lines.
    sse: Bytes,
    /// The JSON object ([`verifier::wire::Event`]), a WebSocket message.
    json: Utf8Bytes,
}

impl BusEvent {
    /// Decodes the leaf of an indexed event and encodes it.
    fn decode(event: &EventRef, event_type: EventType, leaf: &[u8]) -> Result<Self, ledger_core::Error> {
        let corrupt = |e: &dyn std::fmt::Display| {
            ledger_core::Error::Storage(ledger_core::store::StorageError::Corrupt(format!("event {}: {e}", event.index)))
        };
        let (decoded, entry) = verifier::entry::Leaf::decode(leaf).map_err(|e| corrupt(&e))?;
        let wire = Event {
            index: event.index,
            event_type,
            agent: (!event.agent.is_empty()).then(|| event.agent.clone()),
            integrated_time: decoded.integrated_time,
            entry,
        };
        // Compact JSON has no line breaks, so it is one `data:` line.
        let json = serde_json::to_string(&wire).map_err(|e| corrupt(&e))?;
        let sse = format!("id: {}\nevent: {}\ndata: {json}\n\n", event.index, event_type.as_str());
        Ok(Self { index: event.index, event_type, agent: event.agent.clone(), sse: Bytes::from(sse), json: Utf8Bytes::from(json) })
    }

    /// The SSE frame.
    pub fn sse_frame(&self) -> Bytes {
        self.sse.clone()
    }

    /// The JSON object, as a WebSocket text message.
    pub fn json(&self) -> Utf8Bytes {
        self.json.clone()
    }

    /// Bytes held for it.
    fn size(&self) -> usize {
        self.sse.len() + self.json.len() + self.agent.len()
    }
}

/// Events read from the log: those in `[from, covered)` that pass the
/// filter.
#[derive(Debug)]
struct Page {
    events: Vec<Arc<BusEvent>>,
    covered: u64,
}

/// Reads one page of the events in `[from, to)` that pass `filter`; `to`
/// must not pass the published head. The event index is filtered before
/// any leaf is read.
fn read_page(log: &Log, from: u64, to: u64, filter: &EventFilter) -> Result<Page, ledger_core::Error> {
    let refs = log.events(from.checked_sub(1), PAGE_EVENTS)?;
    let mut events = Vec::new();
    let mut bytes = 0usize;
    for event in &refs {
        if event.index >= to {
            return Ok(Page { events, covered: to });
        }
        let Some(event_type) = EventType::of_kind(event.kind) else { continue };
        if !filter.matches(event_type, &event.agent) {
            continue;
        }
        if bytes >= PAGE_BYTES {
            return Ok(Page { events, covered: event.index });
        }
        let leaf = log.entry(event.index)?;
        bytes += leaf.len();
        events.push(Arc::new(BusEvent::decode(event, event_type, &leaf)?));
    }
    // A short page means the index holds nothing more below `to`.
    let covered = match refs.last() {
        Some(last) if refs.len() == PAGE_EVENTS => (last.index + 1).min(to),
        _ => to,
    };
    Ok(Page { events, covered })
}

/// The recent events: every event with an index in `[from, tail)`, in
/// index order, and the bytes they hold.
#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Arc<BusEvent>>,
    bytes: usize,
    from: u64,
    tail: u64,
}

/// The revocation bus of one log (see the module documentation).
#[derive(Debug)]
pub struct RevocationBus {
    log: Arc<Log>,
    config: BusConfig,
    metrics: Arc<Metrics>,
    ring: RwLock<Ring>,
    /// The ring's tail as of the last page that added events: wakes the
    /// subscriptions waiting for new events.
    added: watch::Sender<u64>,
    closed: watch::Sender<bool>,
    subscribers: Arc<Semaphore>,
    feed: Once,
}

impl RevocationBus {
    /// A bus over `log`. Its feed task starts with the first subscription
    /// (on the runtime that serves it), so building one needs no runtime.
    pub fn new(log: Arc<Log>, config: BusConfig, metrics: Arc<Metrics>) -> Self {
        let subscribers = Arc::new(Semaphore::new(config.max_subscribers.clamp(1, Semaphore::MAX_PERMITS)));
        Self {
            log,
            config: BusConfig { ring_events: config.ring_events.max(1), ..config },
            metrics,
            ring: RwLock::new(Ring::default()),
            added: watch::Sender::new(0),
            closed: watch::Sender::new(false),
            subscribers,
            feed: Once::new(),
        }
    }

    /// The bus's limits.
    pub fn config(&self) -> BusConfig {
        self.config
    }

    /// Ends every subscription and refuses new ones (503 `shutting_down`):
    /// called when the server starts shutting down, so that streams that
    /// would never end do not hold its connections open.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Subscribes to the events that pass `filter`, from `start`. Refused
    /// with 503 `too_many_subscribers` past the limit, 503 `shutting_down`
    /// once closed, and 404 `index_beyond_tree` for a start after an index
    /// the log does not have.
    pub fn subscribe(self: &Arc<Self>, filter: EventFilter, start: Start) -> Result<Subscription, ApiError> {
        if *self.closed.borrow() {
            return Err(ApiError::from(ledger_core::Error::ShuttingDown));
        }
        let permit = Arc::clone(&self.subscribers).try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorCode::TooManySubscribers,
                format!("the server serves its maximum of {} event subscribers; retry later", self.config.max_subscribers),
            )
            .retry_after(Duration::from_secs(1))
        })?;
        self.start_feed();
        let size = self.log.head().size;
        let next = match start {
            Start::Head => size,
            Start::First => 0,
            Start::After(index) if index < size => index + 1,
            Start::After(index) => return Err(ApiError::from(ledger_core::Error::IndexBeyondTree { index, size })),
        };
        self.metrics.event_subscribers.inc();
        Ok(Subscription {
            bus: Arc::clone(self),
            filter,
            next,
            pending: VecDeque::new(),
            added: self.added.subscribe(),
            closed: self.closed.subscribe(),
            _permit: permit,
        })
    }

    /// Starts the feed task once, with an empty ring at the current head.
    fn start_feed(self: &Arc<Self>) {
        self.feed.call_once(|| {
            let head = self.log.head().size;
            {
                let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
                ring.from = head;
                ring.tail = head;
            }
            tokio::spawn(Arc::clone(self).run_feed(head));
        });
    }

    /// The feed: reads every new event once, into the ring.
    async fn run_feed(self: Arc<Self>, mut tail: u64) {
        let mut head = self.log.watch_head();
        let mut closed = self.closed.subscribe();
        let everything = EventFilter::default();
        loop {
            if *closed.borrow_and_update() {
                return;
            }
            let size = *head.borrow_and_update();
            if tail < size {
                let log = Arc::clone(&self.log);
                let filter = everything.clone();
                let error = match tokio::task::spawn_blocking(move || read_page(&log, tail, size, &filter)).await {
                    Ok(Ok(page)) => {
                        tail = page.covered;
                        self.extend(page);
                        continue;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                // Subscribers wait (their keep-alives go on) until the log
                // can be read again.
                tracing::error!(error, tail, "reading events for the revocation bus failed; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = closed.changed() => return,
                }
                continue;
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                _ = closed.changed() => {}
            }
        }
    }

    /// Adds a page read by the feed to the ring, then wakes the waiting
    /// subscriptions if it held events.
    fn extend(&self, page: Page) {
        let added = !page.events.is_empty();
        {
            let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
            ring.bytes += page.events.iter().map(|e| e.size()).sum::<usize>();
            ring.events.extend(page.events);
            while ring.events.len() > self.config.ring_events || (ring.bytes > self.config.ring_bytes && ring.events.len() > 1) {
                if let Some(oldest) = ring.events.pop_front() {
                    ring.bytes -= oldest.size();
                    ring.from = oldest.index + 1;
                }
            }
            ring.tail = page.covered;
        }
        if added {
            self.added.send_replace(page.covered);
        }
    }
}

/// What a subscription does next.
enum Step {
    /// Events taken from the ring, and the cursor after them.
    Ring(Vec<Arc<BusEvent>>, u64),
    /// Behind the ring: read the log up to the ring's tail.
    Log(u64),
    /// Nothing new: wait for events to be added.
    Wait,
}

/// One subscriber's cursor over the bus. Dropping it frees its place.
#[derive(Debug)]
pub struct Subscription {
    bus: Arc<RevocationBus>,
    filter: EventFilter,
    /// Every event below this index has been handed out or filtered out.
    next: u64,
    /// Events taken but not yet handed out (at most one page).
    pending: VecDeque<Arc<BusEvent>>,
    added: watch::Receiver<u64>,
    closed: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.metrics.event_subscribers.dec();
    }
}

impl Subscription {
    /// The index a subscriber that has everything handed out so far
    /// resumes after; `None` before the first entry. Every event up to it
    /// has been handed out or did not pass the filter.
    pub fn resume_after(&self) -> Option<u64> {
        self.pending.front().map_or(self.next, |e| e.index).checked_sub(1)
    }

    /// The next event, waiting for it; `None` once the bus is closed (or
    /// the log could not be read: the subscriber resumes after the last
    /// event it got). Cancel-safe: dropped while waiting, it loses nothing.
    pub async fn next(&mut self) -> Option<Arc<BusEvent>> {
        loop {
            if *self.closed.borrow_and_update() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            // Seen before the ring is read: events added after this wake
            // the wait below.
            self.added.borrow_and_update();
            match self.step() {
                Step::Ring(events, next) => {
                    self.pending.extend(events);
                    self.next = next;
                }
                Step::Log(to) => {
                    let (log, filter, from) = (Arc::clone(&self.bus.log), self.filter.clone(), self.next);
                    let read = tokio::task::spawn_blocking(move || read_page(&log, from, to, &filter)).await;
                    let page = match read.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                        Ok(page) => page,
                        Err(error) => {
                            tracing::error!(error, from, "reading events for a subscriber failed; ending its stream");
                            return None;
                        }
                    };
                    self.bus.metrics.events_from_log.inc_by(page.events.len() as u64);
                    self.pending.extend(page.events);
                    self.next = page.covered;
                }
                Step::Wait => {
                    tokio::select! {
                        changed = self.added.changed() => if changed.is_err() { return None },
                        _ = self.closed.changed() => {}
                    }
                }
            }
        }
    }

    /// Moves the cursor over what the ring holds without waiting (the
    /// events that pass the filter are handed out next), so that
    /// [`Subscription::resume_after`] is current: a subscription is woken
    /// only when events are added, so a filtered one that matched none
    /// would otherwise report where it stood then.
    pub fn advance(&mut self) {
        if self.pending.is_empty() {
            if let Step::Ring(events, next) = self.step() {
                self.pending.extend(events);
                self.next = next;
            }
        }
    }

    /// Decides the next step under the ring's read lock.
    fn step(&self) -> Step {
        let ring = self.bus.ring.read().unwrap_or_else(|e| e.into_inner());
        if self.next >= ring.tail {
            return Step::Wait;
        }
        if self.next < ring.from {
            return Step::Log(ring.tail);
        }
        let start = ring.events.partition_point(|e| e.index < self.next);
        let mut taken = Vec::new();
        let mut next = ring.tail;
        for (scanned, event) in ring.events.range(start..).enumerate() {
            if taken.len() == PAGE_EVENTS || scanned == RING_SCAN {
                next = event.index;
                break;
            }
            if self.filter.matches(event.event_type, &event.agent) {
                taken.push(Arc::clone(event));
            }
        }
        Step::Ring(taken, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_types_agents_and_trust_domains() {
        let agent = "spiffe://a.example/agent/x";
        let all = EventFilter::default();
        assert!(all.matches(EventType::Signal, "") && all.matches(EventType::Revocation, agent));
        let types = EventFilter { types: Some(vec![EventType::Revocation, EventType::Reinstatement]), ..EventFilter::default() };
        assert!(types.matches(EventType::Revocation, agent) && !types.matches(EventType::RiskLevelChange, agent));
        let one = EventFilter { agent: Some(AgentId::parse(agent).unwrap()), ..EventFilter::default() };
        assert!(one.matches(EventType::Signal, agent));
        assert!(!one.matches(EventType::Signal, "spiffe://a.example/agent/xy") && !one.matches(EventType::Signal, ""));
        let domain = EventFilter { trust_domain: Some("a.example".into()), ..EventFilter::default() };
        assert!(domain.matches(EventType::Signal, agent));
        assert!(!domain.matches(EventType::Signal, "spiffe://a.example.evil/agent/x") && !domain.matches(EventType::Signal, ""));
    }
}

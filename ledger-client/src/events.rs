//! The revocation bus from the SDK: [`EventStream`], a blocking iterator
//! over `GET /v1/events/stream` (Server-Sent Events) that resumes by
//! itself.
//!
//! An event's id is the index of its log entry, and the server resumes a
//! stream right after any index it is given (`Last-Event-ID`). The stream
//! keeps the last index it has reached (events, and the `id:` lines of the
//! server's keep-alives and of the `ledger-events-after` header for a
//! stream that started live) and reconnects with it whenever the
//! connection ends, fails or goes silent for longer than three keep-alive
//! intervals, with exponential backoff; so it misses no event, and it hands
//! out none twice (an index at or below the last one handed out is
//! dropped, whatever the server sends).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use verifier::wire::EVENTS_AFTER_HEADER;
pub use verifier::wire::{Event, EventType};

use crate::{encode_id, ClientError};

/// Longest SSE line accepted (an event's JSON, its leaf of at most 64 KiB
/// escaped, is far below it).
const MAX_LINE_BYTES: usize = 4 << 20;

/// Where a stream starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Start {
    /// With the next event appended.
    #[default]
    Head,
    /// With the first event of the log.
    First,
    /// Right after this index.
    After(u64),
}

/// Which events to receive, and from where. All conditions given must
/// hold; with none, every event from the next one appended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    types: Vec<EventType>,
    agent: Option<String>,
    trust_domain: Option<String>,
    start: Start,
}

impl EventFilter {
    /// Every event, from the next one appended.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events of these types.
    pub fn types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.types = types.into_iter().collect();
        self
    }

    /// Only events about this agent (a SPIFFE agent id).
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.to_owned());
        self
    }

    /// Only events about agents of this trust domain.
    pub fn trust_domain(mut self, trust_domain: &str) -> Self {
        self.trust_domain = Some(trust_domain.to_owned());
        self
    }

    /// Start right after the entry at `index` (e.g. the last event an
    /// earlier stream handed out).
    pub fn after(mut self, index: u64) -> Self {
        self.start = Start::After(index);
        self
    }

    /// Start with the first event of the log.
    pub fn from_first(mut self) -> Self {
        self.start = Start::First;
        self
    }

    /// The query string, without a start (the stream adds it). The types
    /// are always named, so a newer server never sends a type this SDK
    /// cannot represent.
    fn query(&self) -> String {
        let types = if self.types.is_empty() { EventType::ALL.to_vec() } else { self.types.clone() };
        let mut query = format!("types={}", types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","));
        if let Some(agent) = &self.agent {
            query.push_str(&format!("&agent={}", encode_id(agent)));
        }
        if let Some(domain) = &self.trust_domain {
            query.push_str(&format!("&trust_domain={}", encode_id(domain)));
        }
        query
    }
}

/// How [`EventStream`] reconnects.
#[derive(Clone, Copy, Debug)]
pub struct Reconnect {
    /// Failed connection attempts in a row before [`Iterator::next`]
    /// returns the error (the next call tries again, from the same place).
    pub attempts: u32,
    /// First wait before reconnecting.
    pub initial: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Silence (no event, no keep-alive) after which the connection is
    /// taken for dead; the server sends a keep-alive every 15 s.
    pub idle: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self { attempts: 10, initial: Duration::from_millis(100), max: Duration::from_secs(5), idle: Duration::from_secs(45) }
    }
}

/// Where the stream is: the server's place, once known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Not yet connected to a live stream: its start is the head at the
    /// first connection.
    Live,
    /// Every event up to this index has been handed out or filtered out
    /// (`None`: none yet, from the first entry).
    After(Option<u64>),
}

/// A resumable stream of events (see the module documentation). Each item
/// is an event, in index order, or an error that stopped the stream for
/// now: the server refused the subscription (4xx), or it could not be
/// reached [`Reconnect::attempts`] times in a row. Calling `next` again
/// after an error resumes from the same place.
///
/// ```no_run
/// use ledger_client::{EventFilter, EventStream, EventType};
/// let filter = EventFilter::new().types([EventType::Revocation, EventType::Reinstatement]).trust_domain("example.org");
/// for event in EventStream::connect("http://127.0.0.1:8080", filter)? {
///     let event = event?;
///     println!("{} {} {:?}", event.index, event.event_type, event.agent);
/// }
/// # Ok::<(), ledger_client::ClientError>(())
/// ```
pub struct EventStream {
    http: ureq::Agent,
    url: String,
    reconnect: Reconnect,
    position: Position,
    /// The last event handed out.
    last: Option<u64>,
    body: Option<BufReader<ureq::BodyReader<'static>>>,
    /// Connections lost or refused since the last event (the backoff).
    quiet: u32,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("url", &self.url)
            .field("position", &self.position)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// Subscribes to the log at `base` (e.g. `http://127.0.0.1:8080`): the
    /// first connection is made here, so a refused filter is an error at
    /// once.
    pub fn connect(base: &str, filter: EventFilter) -> Result<Self, ClientError> {
        Self::connect_with(base, filter, Reconnect::default())
    }

    /// [`EventStream::connect`] with a reconnection policy.
    pub fn connect_with(base: &str, filter: EventFilter, reconnect: Reconnect) -> Result<Self, ClientError> {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(reconnect.idle))
            .build()
            .into();
        let position = match filter.start {
            Start::Head => Position::Live,
            Start::First => Position::After(None),
            Start::After(index) => Position::After(Some(index)),
        };
        let url = format!("{}/v1/events/stream?{}", base.trim_end_matches('/'), filter.query());
        let mut stream = Self { http, url, reconnect, position, last: None, body: None, quiet: 0 };
        stream.body = Some(stream.open()?);
        Ok(stream)
    }

    /// The index after which the stream would resume now (`None`: from the
    /// first entry, or a live stream not yet connected).
    pub fn resume_after(&self) -> Option<u64> {
        match self.position {
            Position::After(after) => after,
            Position::Live => None,
        }
    }

    /// One connection, from the current position.
    fn open(&mut self) -> Result<BufReader<ureq::BodyReader<'static>>, ClientError> {
        let url = match self.position {
            Position::After(None) => format!("{}&after=-1", self.url),
            _ => self.url.clone(),
        };
        let mut request = self.http.get(&url).header("accept", "text/event-stream");
        if let Position::After(Some(index)) = self.position {
            request = request.header("last-event-id", &index.to_string());
        }
        let mut response = request.call().map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            return Err(ClientError::Api {
                status,
                code: value["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                message: value["error"]["message"].as_str().unwrap_or(&text).to_owned(),
            });
        }
        let after = response.headers().get(EVENTS_AFTER_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
        match after {
            Some(-1) => self.position = Position::After(None),
            Some(index) => self.position = Position::After(u64::try_from(index).ok()),
            None => {}
        }
        Ok(BufReader::new(response.into_body().into_reader()))
    }

    /// Whether a refusal is worth retrying (busy, shutting down).
    fn retryable(e: &ClientError) -> bool {
        match e {
            ClientError::Api { status, .. } => *status == 503,
            ClientError::Transport(_) => true,
            _ => false,
        }
    }

    fn backoff(&self) -> Duration {
        let shift = self.quiet.min(16);
        self.reconnect.initial.saturating_mul(1 << shift).min(self.reconnect.max)
    }

    /// Reads frames until an event is dispatched; `Ok(None)` when the
    /// connection ends.
    fn read_event(&mut self) -> Result<Option<Event>, ClientError> {
        let Some(body) = self.body.as_mut() else { return Ok(None) };
        let mut line = Vec::new();
        let mut id: Option<u64> = None;
        let mut data = String::new();
        loop {
            line.clear();
            if read_line(body, &mut line, MAX_LINE_BYTES).map_err(|e| ClientError::Transport(e.to_string()))? == 0 {
                return Ok(None);
            }
            let text = std::str::from_utf8(&line).map_err(|_| ClientError::Transport("an SSE line that is not UTF-8".into()))?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                // Dispatch: an id moves the position, data is an event.
                if let Some(index) = id.take() {
                    self.position = Position::After(Some(index));
                }
                if data.is_empty() {
                    continue;
                }
                let event: Event =
                    serde_json::from_str(&data).map_err(|e| ClientError::Transport(format!("an event that is not an Event: {e}")))?;
                data.clear();
                if self.last.is_some_and(|last| event.index <= last) {
                    continue;
                }
                self.last = Some(event.index);
                self.position = Position::After(Some(event.index));
                return Ok(Some(event));
            }
            let (field, value) = match text.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (text, ""),
            };
            match field {
                "" => {} // a comment (keep-alive)
                "id" => id = value.parse().ok(),
                "data" => {
                    // An event, like a line, is bounded: many `data:` lines
                    // must not add up to more.
                    if data.len() + 1 + value.len() > MAX_LINE_BYTES {
                        return Err(ClientError::Transport(format!("an event longer than {MAX_LINE_BYTES} bytes")));
                    }
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {} // `event` (the type is in the data), `retry`
            }
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut refused = 0u32;
        loop {
            if self.body.is_none() {
                std::thread::sleep(self.backoff());
                match self.open() {
                    Ok(body) => self.body = Some(body),
                    Err(e) => {
                        self.quiet = self.quiet.saturating_add(1);
                        refused += 1;
                        if !Self::retryable(&e) || refused >= self.reconnect.attempts {
                            return Some(Err(e));
                        }
                        continue;
                    }
                }
            }
            match self.read_event() {
                Ok(Some(event)) => {
                    self.quiet = 0;
                    return Some(Ok(event));
                }
                // Ended, failed or silent: reconnect from the position.
                Ok(None) | Err(_) => {
                    self.body = None;
                    self.quiet = self.quiet.saturating_add(1);
                }
            }
        }
    }
}

/// Reads one line (up to and including `\n`) of at most `max` bytes into
/// `line`; returns its length, 0 at the end of the stream.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(line.len());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > max {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("an SSE line longer than {max} bytes")));
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(line.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_types_and_encode_ids() {
        assert_eq!(EventFilter::new().query(), "types=revocation,reinstatement,risk-level-change,signal,escalation,decision");
        let filter = EventFilter::new().types([EventType::RiskLevelChange]).agent("spiffe://a.example/agent/x").trust_domain("a.example");
        assert_eq!(filter.query(), "types=risk-level-change&agent=spiffe%3A%2F%2Fa.example%2Fagent%2Fx&trust_domain=a.example");
    }

    #[test]
    fn lines_are_bounded() {
        let mut reader = BufReader::with_capacity(4, &b"ab\ncdefgh\n"[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line, 5).unwrap(), 3);
        line.clear();
        assert!(read_line(&mut reader, &mut line, 5).is_err());
        let mut partial = BufReader::new(&b"no newline"[..]);
        line.clear();
        assert_eq!(read_line(&mut partial, &mut line, 100).unwrap(), 10);
    }
}

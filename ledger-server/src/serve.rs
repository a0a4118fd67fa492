//! The HTTP/1.1 serving loop: a connection cap, a header-read timeout, an
//! idle timeout, and graceful shutdown.
//!
//! `axum::serve` has none of the first three: a client could open
//! connections without limit, send a request line one byte at a time (or
//! never finish it), or stop reading a response, and each would hold a
//! socket, a task and its buffers forever (slowloris). Here:
//!
//! - at most `max_connections` connections are served at once; one more is
//!   accepted, answered `503` `too_many_connections` with `Retry-After`
//!   and closed, so the client learns why instead of hanging in the
//!   kernel's backlog;
//! - a request's head must arrive within `header_timeout` of the server
//!   starting to wait for it (hyper's header-read timer), which is also how
//!   long a keep-alive connection may sit between requests;
//! - a connection on which no byte moves in either direction for
//!   `idle_timeout` while no handler is running (a client that stopped
//!   reading its response) is closed. Handlers bound their own waits: the
//!   JSON body extractor has the body timeout.
//!
//! On shutdown the listener closes first, every connection is asked to
//! finish (idle ones close at once, in-flight requests get their
//! responses), and [`serve`] returns once all connections have ended.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;
use verifier::wire::{ErrorCode, ErrorDetail, ErrorResponse};

/// Connection limits and timeouts of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Time allowed to receive a request's head, counted from when the
    /// server starts waiting for it (also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// Time a connection may go without a byte moving either way while
    /// no request is being handled.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

/// How long answering an over-the-cap connection may take in all: writing
/// the 503, then reading what the client sent so that closing does not
/// reset the connection (a reset can discard the answer unread).
const REJECT_LINGER: Duration = Duration::from_secs(1);

/// Most bytes read and discarded from a rejected connection.
const REJECT_DRAIN_BYTES: usize = 64 * 1024;

/// Most over-the-cap connections answered at once; past this they are
/// closed without an answer, so a flood cannot grow tasks without bound.
const MAX_REJECTING: usize = 64;

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// the open connections finish and returns.
pub async fn serve(listener: TcpListener, router: Router, limits: ServeLimits, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let permits = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    serve_with(listener, router, limits, shutdown, Arc::new(Semaphore::new(permits))).await
}

/// [`serve`] with the connection permits given (tests watch them).
async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
    connections: Arc<Semaphore>,
) -> io::Result<()> {
    let total = connections.available_permits();
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let (stop, stopped) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: retrying at
                    // once would spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        // Small request/response exchanges: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                let (router, http, stopped) = (router.clone(), Arc::clone(&http), stopped.clone());
                tokio::spawn(async move {
                    serve_connection(stream, permit, router, &http, limits.idle_timeout, stopped).await;
                });
            }
            Err(_) => match Arc::clone(&rejecting).try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        reject(stream, limits.max_connections).await;
                        drop(permit);
                    });
                }
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    let _ = stop.send(());
    // Each connection holds a permit until it has ended, so getting all of
    // them back means every in-flight request has been answered.
    let all = u32::try_from(total).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
    Ok(())
}

/// Accept errors that concern one connection only (it went away before
/// it was accepted).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset)
}

/// Serves one connection. Its permit lives in the stream, so a connection
/// upgraded to a WebSocket, which outlives this function, keeps counting
/// against the cap until its socket is dropped.
async fn serve_connection(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    router: Router,
    http: &hyper::server::conn::http1::Builder,
    idle_timeout: Duration,
    mut stopped: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked { inner: stream, activity: Arc::clone(&activity), _permit: permit });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let handling = Handling::start(&activity);
            let router = router.clone();
            async move {
                let response = router.oneshot(req).await;
                drop(handling);
                response
            }
        })
    };
    // Upgrades (`/v1/events/ws`) hand the socket to the handler, and the
    // idle timer below stops watching it: the WebSocket session keeps its
    // own (pings, stalled sends).
    let conn = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let wake = activity.idle_since().map_or_else(|| Instant::now() + idle_timeout, |since| since + idle_timeout);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(wake) => {
                if activity.idle_since().is_some_and(|since| since.elapsed() >= idle_timeout) {
                    tracing::debug!("closing a connection idle for {} ms", idle_timeout.as_millis());
                    return;
                }
            }
        }
    }
}

/// Answers a connection over the cap with a 503 in the API's error shape,
/// then closes it.
async fn reject(mut stream: TcpStream, max_connections: usize) {
    let error = ErrorResponse {
        error: ErrorDetail {
            code: ErrorCode::TooManyConnections,
            message: format!("the server is serving its maximum of {max_connections} connections; retry later"),
            details: None,
        },
    };
    let body = serde_json::to_string(&error).unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Plain poll functions, without tokio's io-util extension traits.
    let exchange = async {
        let mut rest = answer.as_bytes();
        while !rest.is_empty() {
            match poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, rest)).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => rest = &rest[n..],
            }
        }
        poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < REJECT_DRAIN_BYTES {
            let mut buf = ReadBuf::new(&mut sink);
            poll_fn(|cx| Pin::new(&mut stream).poll_read(cx, &mut buf)).await?;
            match buf.filled().len() {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REJECT_LINGER, exchange).await;
}

/// When bytes last moved on a connection, and whether a handler is running.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened`.
    last_io_ms: AtomicU64,
    handlers: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { opened: Instant::now(), last_io_ms: AtomicU64::new(0), handlers: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io_ms.store(ms, Ordering::Relaxed);
    }

    /// Since when the connection has been idle; `None` while a handler runs.
    fn idle_since(&self) -> Option<Instant> {
        if self.handlers.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed)))
    }
}

/// A running handler; the connection is not idle until it is dropped.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.handlers.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        // The idle clock restarts when the response is ready.
        self.0.touch();
        self.0.handlers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when bytes move, holding its connection's
/// place under the cap.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::SocketAddr;

    use axum::routing::get;

    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    struct Running {
        addr: SocketAddr,
        connections: Arc<Semaphore>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn start(router: Router, limits: ServeLimits) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve_with(
            listener,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
            Arc::clone(&connections),
        ));
        Running { addr, connections, stop: Some(stop), done }
    }

    fn limits(header_ms: u64, idle_ms: u64, max_connections: usize) -> ServeLimits {
        ServeLimits { header_timeout: Duration::from_millis(header_ms), idle_timeout: Duration::from_millis(idle_ms), max_connections }
    }

    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// Reads one response with a `content-length` (the tests' routes set
    /// one); returns its head and body.
    fn read_response(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).expect("reading a response head"), 1, "closed mid-head: {buf:?}");
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
        let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        (head, body)
    }

    /// Reads until the peer closes; a reset counts as closed.
    fn read_to_close(stream: &mut std::net::TcpStream) -> usize {
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return total,
                Err(e) => panic!("the server did not close the connection: {e}"),
            }
        }
    }

    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }

    fn hello() -> Router {
        Router::new().route("/", get(|| async { "hello" }))
    }

    #[tokio::test]
    async fn an_unfinished_request_head_is_cut_off() {
        let server = start(hello(), limits(200, 60_000, 8)).await;
        let closed = blocking(move || {
            let mut stream = connect(server.addr);
            // Slowloris: part of a request line, then nothing.
            stream.write_all(b"GET / HT").unwrap();
            read_to_close(&mut stream)
        })
        .await;
        assert_eq!(closed, 0, "no answer is owed to a request that never arrived");
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_gets_503_too_many_connections() {
        let server = start(hello(), limits(30_000, 30_000, 2)).await;
        let addr = server.addr;
        let (mut held, answer) = blocking(move || {
            let mut held = Vec::new();
            for _ in 0..2 {
                let mut stream = connect(addr);
                stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
                let (head, body) = read_response(&mut stream);
                assert!(head.starts_with("http/1.1 200"), "{head}");
                assert_eq!(body, b"hello");
                held.push(stream);
            }
            let mut third = connect(addr);
            let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
            let answer = read_response(&mut third);
            assert_eq!(read_to_close(&mut third), 0);
            (held, answer)
        })
        .await;
        let (head, body) = answer;
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(head.contains("retry-after: 1\r\n"), "{head}");
        assert!(head.contains("content-type: application/json\r\n"), "{head}");
        let error: ErrorResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.error.code, "too_many_connections");

        // A freed slot is served again.
        drop(held.pop());
        let served = blocking(move || {
            for _ in 0..200 {
                let mut stream = connect(addr);
                let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
                let (head, _) = read_response(&mut stream);
                if head.starts_with("http/1.1 200") {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            false
        })
        .await;
        assert!(served, "a closed connection must free its slot");
        drop(held);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_disconnected() {
        const BODY: usize = 64 << 20;
        let big = Router::new().route("/big", get(|| async { vec![b'x'; BODY] }));
        let server = start(big, limits(30_000, 300, 4)).await;
        let (addr, connections) = (server.addr, Arc::clone(&server.connections));
        let mut stream = blocking(move || {
            let mut stream = connect(addr);
            stream.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
            let mut first = [0u8; 16];
            stream.read_exact(&mut first).unwrap();
            stream
        })
        .await;
        // Stop reading; the server's writes stall once the socket buffers
        // fill, and the idle timeout closes the connection.
        let deadline = Instant::now() + WAIT;
        while connections.available_permits() < 4 {
            assert!(Instant::now() < deadline, "the stalled connection was not closed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rest = blocking(move || read_to_close(&mut stream)).await;
        assert!(rest + 16 < BODY, "the whole response was sent");
    }

    #[tokio::test]
    async fn shutdown_answers_in_flight_requests_and_closes_idle_connections() {
        let (entered, handler_entered) = tokio::sync::oneshot::channel::<()>();
        let entered = Arc::new(std::sync::Mutex::new(Some(entered)));
        let slow = Router::new().route(
            "/slow",
            get(move || {
                let entered = Arc::clone(&entered);
                async move {
                    let tx = entered.lock().unwrap().take();
                    if let Some(tx) = tx {
                        let _ = tx.send(());
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }
            }),
        );
        let mut server = start(slow.merge(hello()), limits(30_000, 30_000, 8)).await;
        let addr = server.addr;
        let idle = blocking(move || {
            let mut idle = connect(addr);
            idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
            read_response(&mut idle);
            idle
        })
        .await;
        let in_flight = tokio::task::spawn_blocking(move || {
            let mut stream = connect(addr);
            stream.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
            read_response(&mut stream)
        });
        handler_entered.await.unwrap();
        let _ = server.stop.take().map(|s| s.send(()));
        let (head, body) = in_flight.await.unwrap();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(body, b"done");
        tokio::time::timeout(WAIT, server.done).await.expect("serve returned").unwrap().unwrap();
        let mut idle = idle;
        assert_eq!(blocking(move || read_to_close(&mut idle)).await, 0);
    }
}

//! Audit archives (`GET /v1/export`, admin): a range of the log with what
//! checks it against a signed checkpoint, streamed as it is read from the
//! store and zstd-compressed (docs/FORMAT.md, "Audit archives").

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ledger_core::export::{checkpoint_of, ExportRange};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use verifier::wire::{ErrorCode, ErrorResponse};

use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::extract::Query;

/// Media type of an archive.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.agent-ledger.archive+zstd";

/// Bytes handed to the connection at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Exports served at once; one more is answered 429 `too_many_requests`.
/// Each holds a blocking thread while it streams.
pub const MAX_EXPORTS: usize = 2;

static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_EXPORTS);

/// How long the exporter waits for the connection to take a chunk before
/// it gives up (a client that stopped reading does not hold its thread).
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Chunks in flight between the store reader and the connection: with
/// [`CHUNK_BYTES`], what an export holds in memory besides one read
/// ([`ledger_core::export::CHUNK`] leaves) whatever its size.
const CHUNKS_IN_FLIGHT: usize = 8;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    /// First entry (default 0).
    start: Option<u64>,
    /// One past the last entry (default: the checkpoint's size).
    end: Option<u64>,
    /// The tree size the auditor last saw: the archive carries a
    /// consistency proof from it.
    since_size: Option<u64>,
}

/// An audit archive of a range of the log, under the latest checkpoint
/// (with witnesses configured: the latest one they cosigned to quorum).
#[utoipa::path(get, path = "/v1/export", tag = "log", params(ExportQuery),
    responses(
        (status = 200, description = "agent-ledger-archive/v1, zstd-compressed", content_type = "application/vnd.agent-ledger.archive+zstd", body = Vec<u8>),
        (status = 400, description = "A range outside the checkpoint's tree", body = ErrorResponse),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
        (status = 429, description = "Too many exports at once", body = ErrorResponse),
        (status = 503, description = "Witnesses are configured and none of the checkpoints reached the quorum yet", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn export(State(state): State<AppState>, _: AdminAuth, Query(q): Query<ExportQuery>) -> Result<Response, ApiError> {
    let note = state.export_checkpoint()?;
    let range = ExportRange { start: q.start, end: q.end, since_size: q.since_size };
    // A bad range is refused before anything is streamed.
    let header = range.header(&checkpoint_of(&note)?)?;
    let permit = EXPORTS.try_acquire().map_err(|_| {
        ApiError::new(ErrorCode::TooManyRequests, format!("{MAX_EXPORTS} exports are running; retry when one is done"))
            .retry_after(std::time::Duration::from_secs(5))
    })?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    let log = std::sync::Arc::clone(&state.log);
    let errors = tx.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let out = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK_BYTES), runtime: tokio::runtime::Handle::current() };
        if let Err(e) = log.export(&note, range, out) {
            // The status line is gone: the connection is cut, so the reader
            // sees a broken transfer, never a short archive that parses.
            tracing::warn!(error = %e, "export stopped");
            let _ = errors.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let name = format!("attachment; filename=\"export-{}-{}.alar.zst\"", header.start, header.end);
    Ok((
        [
            (header::CONTENT_TYPE, ARCHIVE_MEDIA_TYPE.to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Hands what the exporter writes to the response body in
/// [`CHUNK_BYTES`] chunks, waiting while the connection is behind (so the
/// exporter never runs ahead of the reader) and failing once it is gone.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    runtime: tokio::runtime::Handle,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES)));
        match self.runtime.block_on(tokio::time::timeout(SEND_TIMEOUT, self.tx.send(Ok(chunk)))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

//! OpenID Shared Signals Framework event streams, as the log keeps them.
//!
//! An SSF transmitter (the server's `ssf` module) turns the log's events
//! (revocations, reinstatements, risk-level changes: [`crate::views::events`])
//! into Security Event Tokens for each stream a receiver created. The log
//! keeps what must survive a restart: each stream's configuration, an
//! opaque document the transmitter defines, and its **cursor**, the index
//! of the first entry whose events the stream has not yet had
//! acknowledged. Everything before the cursor was delivered (a push
//! answered `202`, a poll acknowledged); nothing at or after it is assumed
//! delivered, so a transmitter that restarts resumes at the cursor and a
//! receiver that was down gets every event, in index order.
//!
//! Records ([`Namespace::SsfStreams`], written with [`LogStore::write`]:
//! one atomic, synced write each, outside the group commits, which they
//! never touch): key `stream id ‖ 0x00 ‖ "c"` → the configuration, key
//! `stream id ‖ 0x00 ‖ "n"` → the cursor (`u64` big-endian). The two are
//! separate records so that a cursor advancing never rewrites (nor races)
//! a configuration change.

use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::{Error, Log};

/// Longest stream id, in bytes.
pub const MAX_STREAM_ID_BYTES: usize = 64;

/// Largest stored configuration, in bytes.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// Most streams [`Log::ssf_streams`] returns (the transmitter caps how
/// many it creates well below this).
pub const MAX_STREAMS: usize = 100_000;

const CONFIG_TAG: u8 = b'c';
const CURSOR_TAG: u8 = b'n';

/// A stream as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStream {
    /// Its id.
    pub id: String,
    /// Its configuration, as the transmitter wrote it.
    pub config: Vec<u8>,
    /// The first entry index whose events are not yet delivered.
    pub cursor: u64,
}

/// Whether `id` can be a stream id: 1 to [`MAX_STREAM_ID_BYTES`] bytes of
/// RFC 3986 unreserved characters (letters, digits, `-`, `.`, `_`, `~`), as
/// SSF recommends; so no id is a prefix of another's key.
pub fn valid_stream_id(id: &str) -> bool {
    (1..=MAX_STREAM_ID_BYTES).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn key(id: &str, tag: u8) -> Vec<u8> {
    [id.as_bytes(), &[0, tag]].concat()
}

fn checked(id: &str) -> Result<&str, Error> {
    if valid_stream_id(id) {
        Ok(id)
    } else {
        Err(Error::UnknownStream(id.chars().take(MAX_STREAM_ID_BYTES).collect()))
    }
}

fn decode_cursor(id: &str, value: &[u8]) -> Result<u64, StorageError> {
    <[u8; 8]>::try_from(value).map(u64::from_be_bytes).map_err(|_| StorageError::Corrupt(format!("the cursor of SSF stream {id}")))
}

/// Reads every stream of `store`, in id order. A cursor without its
/// configuration (left by an advance that raced the stream's deletion) is
/// skipped.
fn scan(store: &dyn LogStore) -> Result<Vec<StoredStream>, Error> {
    const PAGE: usize = 1024;
    let mut streams: Vec<StoredStream> = Vec::new();
    let mut from = Vec::new();
    loop {
        let page = store.scan_prefix(Namespace::SsfStreams, &[], &from, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        from = [last.as_slice(), &[0]].concat();
        for (key, value) in &page {
            let corrupt = || StorageError::Corrupt("SSF stream record key".into());
            let (id, tag) = key.split_at_checked(key.len().saturating_sub(2)).ok_or_else(corrupt)?;
            let id = std::str::from_utf8(id).map_err(|_| corrupt())?;
            match tag {
                [0, CONFIG_TAG] => streams.push(StoredStream { id: id.to_owned(), config: value.clone(), cursor: 0 }),
                [0, CURSOR_TAG] => match streams.last_mut() {
                    // The configuration sorts first (`c` < `n`).
                    Some(stream) if stream.id == id => stream.cursor = decode_cursor(id, value)?,
                    _ => tracing::debug!(stream = id, "skipping the cursor of a deleted SSF stream"),
                },
                _ => return Err(corrupt().into()),
            }
            if streams.len() > MAX_STREAMS {
                return Err(StorageError::Corrupt(format!("more than {MAX_STREAMS} SSF streams")).into());
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(streams)
}

/// OpenID SSF streams (module `ssf`). Each method is one synced read or
/// write of the store: call them off the async workers.
impl Log {
    /// Every stream, in id order.
    pub fn ssf_streams(&self) -> Result<Vec<StoredStream>, Error> {
        scan(self.store())
    }

    /// One stream.
    pub fn ssf_stream(&self, id: &str) -> Result<Option<StoredStream>, Error> {
        let id = checked(id)?;
        let (config, cursor) = (key(id, CONFIG_TAG), key(id, CURSOR_TAG));
        let mut values = self.store().multi_get(Namespace::SsfStreams, &[&config, &cursor])?.into_iter();
        let (Some(Some(config)), Some(cursor)) = (values.next(), values.next()) else { return Ok(None) };
        let cursor = cursor.map(|c| decode_cursor(id, &c)).transpose()?.unwrap_or(0);
        Ok(Some(StoredStream { id: id.to_owned(), config, cursor }))
    }

    /// Writes a stream's configuration, and its cursor when `cursor` is
    /// given (a new stream starts at a cursor; a configuration change keeps
    /// the one it has).
    pub fn put_ssf_stream(&self, id: &str, config: &[u8], cursor: Option<u64>) -> Result<(), Error> {
        let id = checked(id)?;
        if config.len() > MAX_CONFIG_BYTES {
            return Err(Error::Config(format!("an SSF stream configuration of {} bytes is over {MAX_CONFIG_BYTES}", config.len())));
        }
        let mut records = vec![Record::put(Namespace::SsfStreams, key(id, CONFIG_TAG), config)];
        if let Some(cursor) = cursor {
            self.check_cursor(cursor)?;
            records.push(Record::put(Namespace::SsfStreams, key(id, CURSOR_TAG), cursor.to_be_bytes()));
        }
        Ok(self.store().write(&records)?)
    }

    /// Deletes a stream and its cursor ([`Error::UnknownStream`] if there
    /// is none).
    pub fn delete_ssf_stream(&self, id: &str) -> Result<(), Error> {
        let id = checked(id)?;
        if self.store().get(Namespace::SsfStreams, &key(id, CONFIG_TAG))?.is_none() {
            return Err(Error::UnknownStream(id.to_owned()));
        }
        let records =
            [Record::delete(Namespace::SsfStreams, key(id, CONFIG_TAG)), Record::delete(Namespace::SsfStreams, key(id, CURSOR_TAG))];
        Ok(self.store().write(&records)?)
    }

    /// Moves a stream's cursor to `cursor` (at most the tree size): the
    /// events of every entry below it are delivered. The transmitter moves
    /// a cursor only forwards, from one task per stream.
    pub fn advance_ssf_cursor(&self, id: &str, cursor: u64) -> Result<(), Error> {
        let id = checked(id)?;
        self.check_cursor(cursor)?;
        if self.store().get(Namespace::SsfStreams, &key(id, CONFIG_TAG))?.is_none() {
            return Err(Error::UnknownStream(id.to_owned()));
        }
        Ok(self.store().write(&[Record::put(Namespace::SsfStreams, key(id, CURSOR_TAG), cursor.to_be_bytes())])?)
    }

    fn check_cursor(&self, cursor: u64) -> Result<(), Error> {
        let size = self.head().size;
        if cursor > size {
            return Err(Error::SizeBeyondTree { requested: cursor, size });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryStore;
    use crate::LogConfig;

    #[test]
    fn stream_ids_are_unreserved_characters() {
        for good in ["a", "f67e39a0a4d34d56b3aa1bc4cff0069f", "A-b.c_d~e", &"x".repeat(MAX_STREAM_ID_BYTES)] {
            assert!(valid_stream_id(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "a\0b", "é", "a:b", &"x".repeat(MAX_STREAM_ID_BYTES + 1)] {
            assert!(!valid_stream_id(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn streams_and_cursors_round_trip_and_delete() {
        let store: Arc<dyn LogStore> = Arc::new(MemoryStore::new());
        let log = crate::conformance::open(Arc::clone(&store), LogConfig { agent_auth: false, ..LogConfig::default() });
        log.append((0..3).map(crate::conformance::entry).collect()).await.unwrap();
        assert!(log.ssf_streams().unwrap().is_empty());
        log.put_ssf_stream("b", b"{\"b\":1}", Some(3)).unwrap();
        log.put_ssf_stream("a", b"{\"a\":1}", Some(1)).unwrap();
        log.put_ssf_stream("ab", b"{}", Some(0)).unwrap();
        log.put_ssf_stream("a", b"{\"a\":2}", None).unwrap();
        log.advance_ssf_cursor("a", 2).unwrap();
        let ids: Vec<(String, Vec<u8>, u64)> = log.ssf_streams().unwrap().into_iter().map(|s| (s.id, s.config, s.cursor)).collect();
        assert_eq!(ids, [("a".into(), b"{\"a\":2}".to_vec(), 2), ("ab".into(), b"{}".to_vec(), 0), ("b".into(), b"{\"b\":1}".to_vec(), 3)]);
        assert_eq!(log.ssf_stream("a").unwrap().map(|s| s.cursor), Some(2));
        assert!(matches!(log.advance_ssf_cursor("a", 4), Err(Error::SizeBeyondTree { requested: 4, size: 3 })));
        assert!(matches!(log.advance_ssf_cursor("zz", 1), Err(Error::UnknownStream(_))));
        assert!(matches!(log.advance_ssf_cursor("no/such", 1), Err(Error::UnknownStream(_))));
        log.delete_ssf_stream("a").unwrap();
        assert!(matches!(log.delete_ssf_stream("a"), Err(Error::UnknownStream(_))));
        assert_eq!(log.ssf_stream("a").unwrap(), None);
        assert_eq!(log.ssf_streams().unwrap().len(), 2);
        // A cursor left behind by a write that raced a deletion is skipped.
        store.write(&[Record::put(Namespace::SsfStreams, key("a", CURSOR_TAG), 1u64.to_be_bytes())]).unwrap();
        assert_eq!(log.ssf_streams().unwrap().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["ab", "b"]);
    }
}

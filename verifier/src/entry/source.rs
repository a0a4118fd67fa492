//! The `source` entry: an admin registers a signal source (a SIEM, a UEBA
//! engine, a vulnerability or threat-intelligence feed) with its own
//! Ed25519 key and the signal types it may file. Registering a name again
//! replaces its key and types from that index on.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};

use super::error::{EntryError, ShapeError};
use super::members::{only_members, required_string};
use super::signal::{SignalType, LOG_SOURCE};
use super::signing::{parse_public_key, parse_stored_public_key};
use super::{EntryKind, Form};

/// Members of a source entry.
pub const MEMBERS: [&str; 4] = ["kind", "source", "key", "types"];

/// Longest source name, in bytes.
pub const MAX_SOURCE_NAME: usize = 64;

/// Checks a source name: 1 to 64 of `[a-z0-9._-]`, starting with a letter
/// or digit, and not the log's own name ([`LOG_SOURCE`]).
pub fn check_source_name(name: &str) -> Result<(), ShapeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SOURCE_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name != LOG_SOURCE;
    if ok {
        Ok(())
    } else {
        Err(ShapeError::SourceName)
    }
}

/// A registered signal source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Its name (what its signals give as `"source"`).
    pub name: String,
    /// Its key: its signals are signed with it.
    pub key: VerifyingKey,
    /// The signal types it may file (never `drift`, the log's, nor
    /// `peer_report`, an agent's), in canonical order, distinct.
    pub types: Vec<SignalType>,
}

impl Source {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Source.as_str()));
        m.insert("source".into(), Value::from(self.name.as_str()));
        m.insert("key".into(), Value::from(B64.encode(self.key.as_bytes())));
        m.insert("types".into(), Value::Array(self.types.iter().map(|t| Value::from(t.as_str())).collect()));
        m
    }

    /// Reads a source object: a new registration in [`Form::Submitted`]
    /// (weak keys refused), a stored one otherwise.
    pub fn from_object(obj: &Map<String, Value>, form: Form) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Source, &MEMBERS)?;
        let name = required_string(obj, "source", MAX_SOURCE_NAME)?;
        check_source_name(name)?;
        let key = required_string(obj, "key", 64)?;
        let key = match form {
            Form::Submitted => parse_public_key(key)?,
            Form::Leaf | Form::Audit => parse_stored_public_key(key)?,
        };
        let Some(Value::Array(list)) = obj.get("types") else { return Err(ShapeError::SourceTypes.into()) };
        let mut types = Vec::with_capacity(list.len());
        for t in list.iter().take(SignalType::ALL.len() + 1) {
            let t = t.as_str().and_then(SignalType::parse).ok_or(ShapeError::SourceTypes)?;
            if !t.from_sources() || types.contains(&t) {
                return Err(ShapeError::SourceTypes.into());
            }
            types.push(t);
        }
        if types.is_empty() || list.len() != types.len() {
            return Err(ShapeError::SourceTypes.into());
        }
        types.sort();
        Ok(Self { name: name.to_string(), key, types })
    }
}

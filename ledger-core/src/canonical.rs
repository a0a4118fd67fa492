//! Canonical JSON (RFC 8785, JCS) for entry bodies: the strict parser and
//! the serializer live in [`verifier::canonical`], shared with offline
//! verifiers; re-exported here.

pub use verifier::canonical::{parse_strict, to_canonical, write_canonical, write_string, MAX_DEPTH, MAX_SAFE_INTEGER};

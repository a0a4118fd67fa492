//! JSON shapes of the HTTP API, shared by the server (which serializes
//! them) and `ledger-verify` (which reads them). Hashes and raw bytes are
//! standard base64. These types never decide bytes that get hashed or
//! signed; that is the job of the entry encoding and [`crate::hash`].

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Serde adapters for base64 fields.
pub mod b64 {
    use alloc::string::String;
    use alloc::vec::Vec;

    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::hash::Hash;

    /// Serializes bytes as base64.
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    /// Deserializes base64 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(D::Error::custom)
    }

    /// Base64 of exactly 32 bytes.
    pub mod hash {
        use super::*;

        /// Serializes a hash as base64.
        pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(h, s)
        }

        /// Deserializes a base64 hash of exactly 32 bytes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
            let bytes = super::deserialize(d)?;
            Hash::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("hash must be 32 bytes"))
        }
    }

    /// A list of base64 hashes.
    pub mod hashes {
        use super::*;
        use serde::ser::SerializeSeq;

        /// Serializes hashes as a list of base64 strings.
        pub fn serialize<S: Serializer>(hs: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(hs.len()))?;
            for h in hs {
                seq.serialize_element(&B64.encode(h))?;
            }
            seq.end()
        }

        /// Deserializes a list of base64 hashes of 32 bytes each.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            let strings = Vec::<String>::deserialize(d)?;
            strings
                .iter()
                .map(|s| {
                    let bytes = B64.decode(s).map_err(D::Error::custom)?;
                    Hash::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("hash must be 32 bytes"))
                })
                .collect()
        }
    }
}

/// An action entry as a client submits it (docs/FORMAT.md). The server
/// parses submissions strictly itself; this type is for clients and docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionEntryRequest {
    /// Always `"action"` for now.
    #[cfg_attr(feature = "openapi", schema(pattern = "^action$", example = "action"))]
    pub kind: String,
    /// The acting agent, `spiffe://<trust-domain>/agent/<name>`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^spiffe://[a-z0-9._-]+/agent/[A-Za-z0-9_-][A-Za-z0-9._-]*$",
            max_length = 2048,
            example = "spiffe://example.org/agent/billing"
        )
    )]
    pub agent: String,
    /// What it did.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, example = "read"))]
    pub action: String,
    /// What it did it to.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048, example = "db/invoices"))]
    pub resource: String,
    /// Optional details; numbers must be integers within ±(2^53-1), keys
    /// must not repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub data: Option<serde_json::Value>,
    /// Optional hidden fields, committed by the agent before it signs:
    /// `{"name": {"u64": "<commitment>"} | {"str": "<digest>"}}`, with
    /// `predicates` and `openings` (docs/FORMAT.md, "Hidden fields"). Values
    /// in the clear are refused (`commit_hidden_first`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub hidden: Option<serde_json::Value>,
    /// The proof of the declared predicates, `{"claims": [...], "proof": "..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub predicates: Option<serde_json::Value>,
    /// The openings of the hidden fields, checked and sealed by the log,
    /// never stored in the leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub openings: Option<serde_json::Value>,
}

/// One appended entry: where it landed and its leaf hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendedEntry {
    /// Durably assigned index.
    pub index: u64,
    /// RFC 9162 leaf hash of the stored leaf bytes.
    #[serde(with = "b64::hash")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub leaf_hash: Hash,
    /// Integrated time the server stamped, milliseconds since the Unix epoch.
    pub integrated_time: u64,
}

/// Response to a batch append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAppendResponse {
    /// The entries in request order, at contiguous indices.
    pub entries: Vec<AppendedEntry>,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryResponse {
    /// Index in the log.
    pub index: u64,
    /// The exact leaf bytes that were hashed (canonical JSON).
    #[serde(with = "b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub leaf: Vec<u8>,
    /// The leaf decoded.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub entry: serde_json::Value,
}

/// A range of entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntriesResponse {
    /// Entries in index order.
    pub entries: Vec<EntryResponse>,
    /// Tree size when the range was read.
    pub tree_size: u64,
}

/// An RFC 9162 inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProofResponse {
    /// Leaf index.
    pub index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// Audit path, leaf sibling first.
    #[serde(with = "b64::hashes")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub hashes: Vec<Hash>,
}

/// An RFC 9162 consistency proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProofResponse {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Consistency path.
    #[serde(with = "b64::hashes")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub hashes: Vec<Hash>,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a precise human message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// What exactly was wrong.
    pub message: String,
}

//! What an agent does with the ledger, under the paths its SDK and tools
//! have used: sign entries and requests, build rotations, present a
//! passport and attest. The rules themselves live in the entry model
//! ([`crate::entry`]: passports, signing, attestations) and the agent
//! registry fold ([`crate::fold::registry`]: key chains, sequence numbers,
//! retirement); this module only re-exports them.

pub use crate::canonical::LEAF_VERSION;
pub use crate::entry::attestation::{attestation_failures, verdict};
pub use crate::entry::error::AgentError;
pub use crate::entry::members::string;
pub use crate::entry::passport::{Passport, PASSPORT_MEMBERS};
pub use crate::entry::signing::{
    hex, parse_hash, parse_public_key, parse_seq, parse_signature, parse_stored_public_key, request_message, rotation, sign_entry,
    signed_body, signed_message, signing_message, verify_signature, HEADER_AGENT_ID, HEADER_AGENT_SIGNATURE, HEADER_AGENT_TIMESTAMP,
    REQUEST_CONTEXT, SIGNATURE_CONTEXT, UNSIGNED_MEMBERS,
};

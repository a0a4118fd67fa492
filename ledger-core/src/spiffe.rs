//! SPIFFE agent ids: the rules live in [`verifier::agent_id`] (parsed once
//! into an [`AgentId`]); re-exported here under their earlier names.

pub use verifier::agent_id::{validate_agent_id, AgentId, AgentIdError as SpiffeIdError, MAX_SPIFFE_ID_BYTES};

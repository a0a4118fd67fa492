//! The `action` entry: something an agent did, signed by it, with optional
//! free-form `data` and hidden fields (committed, [`crate::disclosure`]).

use alloc::boxed::Box;
use alloc::string::{String, ToString};

use serde_json::{Map, Value};

use super::error::{EntryError, HiddenError, ShapeError};
use super::members::{only_members, required_string};
use super::signing::AgentSignature;
use super::{EntryKind, Form};
use crate::agent_id::AgentId;
use crate::disclosure::CommittedFields;

/// Longest `action` string, in characters.
pub const MAX_ACTION_CHARS: usize = 256;
/// Longest `resource` string, in characters.
pub const MAX_RESOURCE_CHARS: usize = 2048;

/// Members of an action as an agent submits it.
pub const SUBMITTED_MEMBERS: [&str; 7] = ["kind", "agent", "action", "resource", "data", "seq", "signature"];
/// Members of an action as the log stores it (hidden fields committed).
pub const LEAF_MEMBERS: [&str; 9] = ["kind", "agent", "action", "resource", "data", "seq", "signature", "hidden", "predicates"];

/// Something an agent did.
#[derive(Clone, Debug)]
pub struct Action {
    /// The acting agent.
    pub agent: AgentId,
    /// What it did.
    pub action: String,
    /// What it did it to.
    pub resource: String,
    /// Free-form details.
    pub data: Option<Map<String, Value>>,
    /// Hidden fields (commitments and the append-time proof), read in
    /// [`Form::Leaf`] only.
    pub hidden: Option<Box<CommittedFields>>,
    /// The agent's signature: absent where the log runs without agent
    /// authentication, and not decoded in [`Form::Leaf`].
    pub signature: Option<AgentSignature>,
}

impl Action {
    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId, form: Form) -> Result<Self, EntryError> {
        let allowed: &'static [&'static str] = match form {
            Form::Submitted => &SUBMITTED_MEMBERS,
            Form::Leaf | Form::Audit => &LEAF_MEMBERS,
        };
        only_members(obj, EntryKind::Action, allowed)?;
        let action = required_string(obj, "action", MAX_ACTION_CHARS)?.to_string();
        let resource = required_string(obj, "resource", MAX_RESOURCE_CHARS)?.to_string();
        let data = match obj.get("data") {
            None => None,
            Some(Value::Object(d)) => Some(d.clone()),
            Some(_) => return Err(ShapeError::DataNotAnObject.into()),
        };
        let hidden = match form {
            Form::Leaf => CommittedFields::from_leaf(obj).map_err(|e| HiddenError::Committed(Box::new(e)))?.map(Box::new),
            // The signature covers the commitments as stored; an audit
            // checks it without decoding them.
            Form::Submitted | Form::Audit => None,
        };
        let signature = if form.reads_signatures() && (obj.contains_key("seq") || obj.contains_key("signature")) {
            Some(AgentSignature::from_object(obj)?)
        } else {
            None
        };
        Ok(Self { agent, action, resource, data, hidden, signature })
    }
}

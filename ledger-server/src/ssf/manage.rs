//! The stream management API's operations (SSF 1.0 §8.1): creating,
//! reading, updating, replacing and deleting streams, their status,
//! subjects and verification requests. Each checks that the caller owns
//! the stream ([`super::auth`]) and stores what it changes before
//! answering.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use verifier::wire::ErrorCode;
use verifier::AgentId;

use super::set::{self, EventType};
use super::stream::{self, Delivery, ReceiverSupplied, Status, Stream};
use super::{
    lock, unknown_stream, Caller, DefaultSubjects, ManagementSet, StreamState, Transmitter, MAX_MANAGEMENT_SETS, MAX_STREAMS,
    MAX_STREAMS_PER_RECEIVER, MAX_SUBJECTS, MAX_TEXT_CHARS,
};
use crate::error::ApiError;

impl Transmitter {
    /// Creates a stream (SSF §8.1.1.1); its cursor starts at the log's
    /// head, so it carries the events appended from now on.
    pub async fn create(&self, caller: &Caller, request: &Map<String, Value>) -> Result<Value, ApiError> {
        let fields = ReceiverSupplied::read(request)?;
        let _creating = self.inner.creating.lock().await;
        let (mine, all) = {
            let streams = lock(&self.inner.streams);
            (streams.values().filter(|s| lock(&s.doc).owner == caller.receiver).count(), streams.len())
        };
        if mine >= MAX_STREAMS_PER_RECEIVER || all >= MAX_STREAMS {
            return Err(ApiError::new(
                ErrorCode::TooManyStreams,
                format!("a receiver may have {MAX_STREAMS_PER_RECEIVER} streams (and the transmitter {MAX_STREAMS}); delete one first"),
            ));
        }
        let mut id = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let doc = Stream {
            stream_id: id.iter().map(|b| format!("{b:02x}")).collect(),
            owner: caller.receiver.clone(),
            aud: caller.audience.clone(),
            delivery: fields.delivery.unwrap_or(Delivery::Poll),
            events_requested: fields.events_requested,
            description: fields.description,
            status: Status::Enabled,
            reason: None,
            default_subjects: self.inner.config.default_subjects,
            subjects_added: Default::default(),
            subjects_removed: Default::default(),
            last_error: None,
        };
        let bytes = serde_json::to_vec(&doc).map_err(ApiError::internal)?;
        let id = doc.stream_id.clone();
        let cursor = self
            .inner
            .blocking(move |log| {
                let cursor = log.head().size;
                log.put_ssf_stream(&id, &bytes, Some(cursor)).map(|()| cursor)
            })
            .await?;
        let config = self.config_of(&doc);
        let stream = Arc::new(StreamState::new(doc, cursor));
        lock(&self.inner.streams).insert(stream.id.clone(), Arc::clone(&stream));
        tracing::info!(stream = %stream.id, receiver = %caller.receiver, cursor, "SSF stream created");
        self.spawn(stream);
        Ok(config)
    }

    /// One stream's configuration, or (without an id) every stream of the
    /// caller (SSF §8.1.1.2).
    pub fn read(&self, caller: &Caller, id: Option<&str>) -> Result<Value, ApiError> {
        match id {
            Some(id) => Ok(self.config_of(&self.stream(caller, id)?.snapshot())),
            None => {
                let streams: Vec<Arc<StreamState>> = lock(&self.inner.streams).values().cloned().collect();
                let configs: Vec<Value> =
                    streams.iter().map(|s| s.snapshot()).filter(|d| caller.owns(&d.owner)).map(|d| self.config_of(&d)).collect();
                Ok(Value::Array(configs))
            }
        }
    }

    /// Updates (`replace = false`, PATCH: members absent stay) or replaces
    /// (PUT: receiver-supplied members absent are removed) a stream's
    /// configuration (SSF §8.1.1.3, §8.1.1.4).
    pub async fn update(&self, caller: &Caller, request: &Map<String, Value>, replace: bool) -> Result<Value, ApiError> {
        let stream = self.stream(caller, stream::stream_id(request)?)?;
        let fields = ReceiverSupplied::read(request)?;
        let doc = self
            .inner
            .modify(&stream, |doc| {
                stream::check_transmitter_supplied(request, &self.config_of(doc))?;
                if replace {
                    doc.delivery = fields.delivery.unwrap_or(Delivery::Poll);
                    doc.events_requested = fields.events_requested;
                    doc.description = fields.description;
                } else {
                    if let Some(delivery) = fields.delivery {
                        doc.delivery = delivery;
                    }
                    if let Some(events) = fields.events_requested {
                        doc.events_requested = Some(events);
                    }
                    if let Some(description) = fields.description {
                        doc.description = Some(description);
                    }
                }
                Ok(doc.clone())
            })
            .await?;
        Ok(self.config_of(&doc))
    }

    /// Deletes a stream (SSF §8.1.1.5): its delivery task stops and its
    /// records are removed.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let stream = self.stream(caller, id)?;
        let _held = stream.manage.lock().await;
        if stream.deleted.load(Ordering::SeqCst) {
            return Err(unknown_stream(id));
        }
        let stored = stream.id.clone();
        self.inner.blocking(move |log| log.delete_ssf_stream(&stored)).await?;
        stream.deleted.store(true, Ordering::SeqCst);
        lock(&self.inner.streams).remove(&stream.id);
        stream.bump();
        tracing::info!(stream = %stream.id, "SSF stream deleted");
        Ok(())
    }

    /// A stream's status (SSF §8.1.2.1), with the last delivery error.
    pub fn status(&self, caller: &Caller, id: &str) -> Result<Value, ApiError> {
        let doc = self.stream(caller, id)?.snapshot();
        let mut status = json!({ "stream_id": doc.stream_id, "status": doc.status.name() });
        if let Some(reason) = &doc.reason {
            status["reason"] = Value::from(reason.as_str());
        }
        if let Some(error) = &doc.last_error {
            status["last_error"] = json!(error);
        }
        Ok(status)
    }

    /// Changes a stream's status (SSF §8.1.2.2). A change the admin makes
    /// to a receiver's stream is the transmitter's own: the receiver is sent
    /// a stream-updated SET first (SSF §8.1.5). Disabling drops what is
    /// pending: the cursor moves to the head, when disabled and again when
    /// enabled.
    pub async fn set_status(&self, caller: &Caller, request: &Map<String, Value>) -> Result<Value, ApiError> {
        let stream = self.stream(caller, stream::stream_id(request)?)?;
        let status =
            request.get("status").and_then(Value::as_str).and_then(Status::parse).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidStreamStatus, "\"status\" must be \"enabled\", \"paused\" or \"disabled\"")
            })?;
        let reason = optional_text(request, "reason", ErrorCode::InvalidStreamStatus)?;
        let (before, owner) = {
            let doc = lock(&stream.doc);
            (doc.status, doc.owner.clone())
        };
        if caller.receiver != owner && before != status {
            let mut event = json!({ "status": status.name() });
            if let Some(reason) = &reason {
                event["reason"] = Value::from(reason.as_str());
            }
            let set = ManagementSet { jti: set::management_jti(&stream.id), event_type: EventType::StreamUpdated, event };
            if !stream.enqueue(set) {
                tracing::warn!(stream = %stream.id, "the stream-updated SET was dropped: too many management SETs waiting");
            }
        }
        if before != status && (before == Status::Disabled || status == Status::Disabled) {
            self.inner.advance(&stream, self.inner.log.head().size).await?;
        }
        self.inner
            .modify(&stream, |doc| {
                doc.status = status;
                doc.reason = reason;
                Ok(())
            })
            .await?;
        self.status(caller, &stream.id)
    }

    /// Adds (`add`) or removes a subject: an agent, as a `uri` subject
    /// with its SPIFFE id (SSF §8.1.3). An agent not registered (yet) is
    /// taken as any other, so the answer tells nothing about who exists
    /// (SSF §9.1).
    pub async fn subject(&self, caller: &Caller, request: &Map<String, Value>, add: bool) -> Result<(), ApiError> {
        let stream = self.stream(caller, stream::stream_id(request)?)?;
        let agent = self.subject_agent(request)?;
        if add && request.get("verified").is_some_and(|v| !v.is_boolean()) {
            return Err(ApiError::new(ErrorCode::InvalidSubject, "\"verified\" must be a boolean"));
        }
        let full = || ApiError::new(ErrorCode::TooManySubjects, format!("a stream adds or removes at most {MAX_SUBJECTS} subjects"));
        self.inner
            .modify(&stream, |doc| {
                let agent = agent.into_string();
                if add {
                    doc.subjects_removed.remove(&agent);
                    if doc.default_subjects == DefaultSubjects::None && !doc.subjects_added.contains(&agent) {
                        if doc.subjects_added.len() >= MAX_SUBJECTS {
                            return Err(full());
                        }
                        doc.subjects_added.insert(agent);
                    }
                } else {
                    doc.subjects_added.remove(&agent);
                    if doc.default_subjects == DefaultSubjects::All && !doc.subjects_removed.contains(&agent) {
                        if doc.subjects_removed.len() >= MAX_SUBJECTS {
                            return Err(full());
                        }
                        doc.subjects_removed.insert(agent);
                    }
                }
                Ok(())
            })
            .await
    }

    fn subject_agent(&self, request: &Map<String, Value>) -> Result<AgentId, ApiError> {
        let invalid = |m: &str| ApiError::new(ErrorCode::InvalidSubject, m);
        let subject = request.get("subject").and_then(Value::as_object).ok_or_else(|| invalid("the request needs a \"subject\" object"))?;
        if subject.get("format").and_then(Value::as_str) != Some("uri") {
            return Err(invalid("subjects are agents, as {\"format\":\"uri\",\"uri\":\"spiffe://…\"} (RFC 9493)"));
        }
        let uri = subject.get("uri").and_then(Value::as_str).ok_or_else(|| invalid("a uri subject needs \"uri\""))?;
        let agent = AgentId::parse(uri).map_err(|e| invalid(&format!("{uri:?} is not an agent id: {e}")))?;
        if let Some(domain) = &self.inner.log.config().trust_domain {
            if agent.trust_domain() != domain {
                return Err(invalid(&format!("{uri:?} is not in the trust domain {domain}")));
            }
        }
        Ok(agent)
    }

    /// Queues a verification SET (SSF §8.1.4.2); 429 while
    /// [`MAX_MANAGEMENT_SETS`] wait already.
    pub async fn verify(&self, caller: &Caller, request: &Map<String, Value>) -> Result<(), ApiError> {
        let stream = self.stream(caller, stream::stream_id(request)?)?;
        let state = optional_text(request, "state", ErrorCode::InvalidStream)?;
        let event = state.map_or_else(|| json!({}), |s| json!({ "state": s }));
        let set = ManagementSet { jti: set::management_jti(&stream.id), event_type: EventType::Verification, event };
        if !stream.enqueue(set) {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!("{MAX_MANAGEMENT_SETS} verification or stream-updated SETs already wait on this stream"),
            )
            .with_retry_after(Duration::from_secs(1)));
        }
        Ok(())
    }
}

fn optional_text(request: &Map<String, Value>, member: &str, code: ErrorCode) -> Result<Option<String>, ApiError> {
    match request.get(member) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TEXT_CHARS => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(code, format!("\"{member}\" must be a string of at most {MAX_TEXT_CHARS} characters"))),
    }
}

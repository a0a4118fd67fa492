//! `agent_ledger._native`: the Rust SDK (`ledger-client`) and the offline
//! verifier (`verifier`) for CPython. Nothing here signs, hashes,
//! canonicalises or commits by itself: every such step is the Rust SDK's,
//! so an entry made from Python is byte for byte the one Rust makes.
//!
//! Every call that waits on the network releases the interpreter lock.
//! Errors become the exceptions of `agent_ledger.errors` (one class per
//! server error code), raised with the code the server sent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_client::{ClientError, EventFilter, EventType, Measurements, Retry, SoftwareAttester, TokenGrant};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString};
use rand_core::SeedableRng as _;
use serde_json::Value;

/// The exception of `agent_ledger.errors` named `class`, with `message`.
fn ledger_exception(py: Python<'_>, class: &str, message: String) -> PyErr {
    let made = py.import("agent_ledger.errors").and_then(|m| m.getattr(class)).and_then(|c| c.call1((message,)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// The exception for a client error: the server's errors by their code,
/// the others by what failed.
fn client_error(py: Python<'_>, e: ClientError) -> PyErr {
    let text = e.to_string();
    match e {
        ClientError::Api { status, code, message } => api_exception(py, status, &code, message),
        ClientError::Key(_) => ledger_exception(py, "KeyFileError", text),
        // Found before sending: the code the server would have answered.
        ClientError::AgentId { .. } => invalid_agent_id(py, text),
        ClientError::Transport(_) => ledger_exception(py, "TransportError", text),
        ClientError::Tpm(_) => ledger_exception(py, "TpmError", text),
        ClientError::Busy(_) => ledger_exception(py, "LedgerBusy", text),
        ClientError::Unavailable { .. } => ledger_exception(py, "LedgerUnavailable", text),
        _ => ledger_exception(py, "LedgerError", text),
    }
}

/// The exception for the server's error `code` (its class in
/// `agent_ledger.errors`).
fn api_exception(py: Python<'_>, status: u16, code: &str, message: String) -> PyErr {
    let made = py.import("agent_ledger.errors").and_then(|m| m.getattr("api_error")).and_then(|f| f.call1((status, code, message)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

fn invalid_agent_id(py: Python<'_>, message: String) -> PyErr {
    api_exception(py, 400, ledger_client::ErrorCode::InvalidAgentId.as_str(), message)
}

fn verification_error(py: Python<'_>, message: String) -> PyErr {
    ledger_exception(py, "VerificationError", message)
}

/// A Python object (dicts, lists, str, int, bool, None) as JSON, through
/// the standard `json` module, refusing NaN and infinities.
fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    kwargs.set_item("ensure_ascii", false)?;
    let text: String = py.import("json")?.getattr("dumps")?.call((obj,), Some(&kwargs))?.extract()?;
    serde_json::from_str(&text).map_err(|e| PyValueError::new_err(format!("not JSON: {e}")))
}

/// JSON as Python objects.
fn to_py(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    Ok(py.import("json")?.getattr("loads")?.call1((value.to_string(),))?.unbind())
}

fn hex32(name: &'static str, text: &str) -> PyResult<[u8; 32]> {
    verifier::entry::signing::parse_hash(text, name).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// An agent's Ed25519 signing key. Its secret is never printed; files
/// holding it are written with mode 0600 and refused when others may read
/// them.
#[pyclass(frozen, module = "agent_ledger._native")]
struct Key {
    key: SigningKey,
}

#[pymethods]
impl Key {
    /// A new key from the operating system's random source.
    #[staticmethod]
    fn generate() -> Self {
        Self { key: SigningKey::generate(&mut rand_core::OsRng) }
    }

    /// The key whose 32-byte secret is `seed` (test vectors).
    #[staticmethod]
    fn from_seed(seed: &[u8]) -> PyResult<Self> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| PyValueError::new_err("a key seed is 32 bytes"))?;
        Ok(Self { key: SigningKey::from_bytes(&seed) })
    }

    /// Reads a key file (base64 of the 32-byte secret); refuses one that
    /// its group or others may read or write.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        ledger_client::load_key(&path).map(|key| Self { key }).map_err(|e| client_error(py, e))
    }

    /// Reads the key file, or creates it (mode 0600) with a new key.
    #[staticmethod]
    fn load_or_create(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        ledger_client::load_or_create_key(&path).map(|key| Self { key }).map_err(|e| client_error(py, e))
    }

    /// Writes the key to `path` with mode 0600 (whole, then renamed);
    /// an existing file is replaced only with `overwrite=True`.
    #[pyo3(signature = (path, *, overwrite = false))]
    fn save(&self, py: Python<'_>, path: PathBuf, overwrite: bool) -> PyResult<()> {
        ledger_client::save_key(&path, &self.key, overwrite).map_err(|e| client_error(py, e))
    }

    /// The public key, base64 (a passport's `public_key`).
    #[getter]
    fn public_key(&self) -> String {
        ledger_client::public_key_b64(&self.key)
    }

    fn __repr__(&self) -> String {
        format!("Key(public_key={:?})", self.public_key())
    }
}

/// Where an entry landed: its `index` and the server's whole answer.
#[pyclass(frozen, module = "agent_ledger._native")]
struct Receipt {
    #[pyo3(get)]
    index: u64,
    response: Value,
}

#[pymethods]
impl Receipt {
    #[getter]
    fn response(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &self.response)
    }

    fn __repr__(&self) -> String {
        format!("Receipt(index={})", self.index)
    }
}

impl From<ledger_client::Receipt> for Receipt {
    fn from(r: ledger_client::Receipt) -> Self {
        Self { index: r.index, response: r.response }
    }
}

/// A running `Client.attest_every`: stopped by `stop()`, by leaving its
/// `with` block, or when collected.
#[pyclass(frozen, module = "agent_ledger._native")]
struct AttestLoop {
    running: Mutex<Option<ledger_client::AttestLoop>>,
}

#[pymethods]
impl AttestLoop {
    /// Stops the loop and waits for an attestation in progress.
    fn stop(&self, py: Python<'_>) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(running) = running {
            // The loop may be waiting for the interpreter to report an
            // error: release it while waiting for the loop.
            py.detach(|| running.stop());
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.stop(py);
    }
}

impl Drop for AttestLoop {
    fn drop(&mut self) {
        // Collected with the interpreter lock held: joining here could wait
        // on a loop that waits for the lock.
        if let Some(running) = self.running.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            running.stop_in_background();
        }
    }
}

/// The log's events as an iterator of dicts (`index`, `type`, `agent`,
/// `integrated_time`, `entry`) that resumes by itself after a lost
/// connection, missing and repeating none.
#[pyclass(frozen, module = "agent_ledger._native")]
struct EventStream {
    stream: Mutex<ledger_client::EventStream>,
    /// The stream's `resume_after`, kept beside it so that reading it never
    /// waits for a `__next__` blocked on the network (`u64::MAX`: none yet).
    resume_after: AtomicU64,
}

impl EventStream {
    fn new(stream: ledger_client::EventStream) -> Self {
        let resume_after = AtomicU64::new(stream.resume_after().unwrap_or(u64::MAX));
        Self { stream: Mutex::new(stream), resume_after }
    }
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let next = py.detach(|| {
            let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
            let next = stream.next();
            self.resume_after.store(stream.resume_after().unwrap_or(u64::MAX), Ordering::Relaxed);
            next
        });
        match next {
            None => Ok(None),
            Some(Ok(event)) => {
                let value = serde_json::to_value(&event).map_err(|e| PyValueError::new_err(e.to_string()))?;
                to_py(py, &value).map(Some)
            }
            Some(Err(e)) => Err(client_error(py, e)),
        }
    }

    /// The index a reconnection resumes after (`None` before the stream
    /// has told where it starts).
    #[getter]
    fn resume_after(&self) -> Option<u64> {
        Some(self.resume_after.load(Ordering::Relaxed)).filter(|&i| i != u64::MAX)
    }
}

/// An agent's connection to the ledger: every entry is signed with the
/// agent's key and its next sequence number (resumed from the log), hidden
/// fields are committed here before signing, and 503 answers and refused
/// connections are retried with backoff.
#[pyclass(frozen, module = "agent_ledger._native")]
struct Client {
    inner: Arc<ledger_client::Client>,
    url: String,
    /// Whether it was given a code hash, so that it can attest.
    attests: bool,
    /// Held through a rotation (they share the pending key file).
    rotating: Mutex<()>,
    /// Where the key lives, if it was given as a file: a rotation saves
    /// the new key there.
    key_file: Option<PathBuf>,
}

/// `hidden` as the SDK takes it: `int` → `{"u64": n}`, `str` →
/// `{"str": s}`, a dict (e.g. `{"u64": n, "prove": [{"le": 10000}]}`) as
/// given.
fn hidden_spec(hidden: &Bound<'_, PyDict>) -> PyResult<Value> {
    let mut out = serde_json::Map::new();
    for (name, value) in hidden.iter() {
        let name: String = name.extract().map_err(|_| PyTypeError::new_err("hidden field names are str"))?;
        let spec = if value.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err(format!("hidden field {name:?}: a bool cannot be hidden (use 0 or 1)")));
        } else if value.is_instance_of::<PyInt>() {
            let n: u64 =
                value.extract().map_err(|_| PyValueError::new_err(format!("hidden field {name:?}: integers are 0 ..= 2^53 - 1")))?;
            serde_json::json!({ "u64": n })
        } else if value.is_instance_of::<PyString>() {
            serde_json::json!({ "str": value.extract::<String>()? })
        } else if value.is_instance_of::<PyDict>() {
            to_json(&value)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "hidden field {name:?}: an int, a str or a dict such as {{\"u64\": n, \"prove\": [...]}}"
            )));
        };
        out.insert(name, spec);
    }
    Ok(Value::Object(out))
}

fn agent_key(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<(SigningKey, Option<PathBuf>)> {
    if let Ok(k) = key.extract::<PyRef<'_, Key>>() {
        return Ok((k.key.clone(), None));
    }
    let path: PathBuf = key.extract().map_err(|_| PyTypeError::new_err("key must be a Key or the path of a key file"))?;
    let next = pending_key_file(&path);
    if next.exists() {
        return Err(ledger_exception(
            py,
            "KeyFileError",
            format!(
                "{} exists: a key rotation's outcome is unknown; keep the key the log has in force (GET /v1/agents/{{id}}) as {} and remove the other",
                next.display(),
                path.display()
            ),
        ));
    }
    let loaded = ledger_client::load_key(&path).map_err(|e| client_error(py, e))?;
    Ok((loaded, Some(path)))
}

#[pymethods]
impl Client {
    /// Connects as `agent_id` (a registered agent) with `key` (a `Key`, or
    /// the path of its key file) and resumes its sequence numbers from the
    /// log. `code_hash` (hex SHA-256 of the agent's code, as in its
    /// passport) enables `attest()`; `image_digest` names its container
    /// image (default `python:<version>`).
    #[new]
    #[pyo3(signature = (url, agent_id, key, *, code_hash = None, model_hash = None, image_digest = None, retry_attempts = 8, retry_initial_s = 0.05, retry_max_s = 2.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        agent_id: &str,
        key: &Bound<'_, PyAny>,
        code_hash: Option<&str>,
        model_hash: Option<&str>,
        image_digest: Option<&str>,
        retry_attempts: u32,
        retry_initial_s: f64,
        retry_max_s: f64,
    ) -> PyResult<Self> {
        let (signing_key, key_file) = agent_key(py, key)?;
        let code_hash = code_hash.map(|h| hex32("code_hash", h)).transpose()?;
        let attests = code_hash.is_some();
        let model_hash = model_hash.map(|h| hex32("model_hash", h)).transpose()?;
        let seconds = |s: f64, name: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| PyValueError::new_err(format!("{name} must be a non-negative number of seconds")))
        };
        let retry = Retry {
            attempts: retry_attempts.max(1),
            initial: seconds(retry_initial_s, "retry_initial_s")?,
            max: seconds(retry_max_s, "retry_max_s")?,
        };
        // Without a container image, the runtime is the interpreter.
        let digest = image_digest.map_or_else(
            || {
                let v = py.version_info();
                format!("python:{}.{}.{}", v.major, v.minor, v.patch)
            },
            str::to_owned,
        );
        let (url_owned, agent_owned) = (url.to_owned(), agent_id.to_owned());
        let inner = py
            .detach(move || {
                let client = ledger_client::Client::connect_with(&url_owned, &agent_owned, signing_key, retry)?;
                Ok::<_, ClientError>(match code_hash {
                    Some(code) => client.with_attester(Box::new(SoftwareAttester), Measurements::new(code, model_hash, &digest)),
                    None => client,
                })
            })
            .map_err(|e| client_error(py, e))?;
        Ok(Self { inner: Arc::new(inner), url: url.trim_end_matches('/').to_owned(), attests, rotating: Mutex::new(()), key_file })
    }

    /// The agent's SPIFFE id.
    #[getter]
    fn agent_id(&self) -> String {
        self.inner.agent().as_str().to_owned()
    }

    /// The log's origin: every signature is bound to it.
    #[getter]
    fn origin(&self) -> String {
        self.inner.origin().to_owned()
    }

    /// The server's base URL.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// The agent's public key in force, base64.
    #[getter]
    fn public_key(&self) -> String {
        self.inner.public_key()
    }

    /// Records an action: `hidden` fields are committed (and their
    /// predicates proven) here, so only commitments are signed and logged.
    #[pyo3(signature = (action, resource, data = None, hidden = None))]
    fn append(
        &self,
        py: Python<'_>,
        action: &str,
        resource: &str,
        data: Option<&Bound<'_, PyAny>>,
        hidden: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Receipt> {
        let mut entry = serde_json::json!({ "kind": "action", "action": action, "resource": resource });
        if let Some(d) = data {
            entry["data"] = to_json(d)?;
        }
        if let Some(h) = hidden {
            entry["hidden"] = hidden_spec(h)?;
        }
        self.append_value(py, entry)
    }

    /// Appends any action object as given (`agent`, `seq` and `signature`
    /// are filled in; `hidden` in the SDK's form is committed).
    fn append_entry(&self, py: Python<'_>, entry: &Bound<'_, PyAny>) -> PyResult<Receipt> {
        let entry = to_json(entry)?;
        self.append_value(py, entry)
    }

    /// Appends several action objects (as `append_entry` takes them) in
    /// one request, all or none, at contiguous indices in this order; one
    /// round trip and one durable commit for all.
    fn append_batch(&self, py: Python<'_>, entries: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<Receipt>> {
        if entries.is_empty() {
            return Err(PyValueError::new_err("append_batch needs at least one entry"));
        }
        let entries = entries.iter().map(to_json).collect::<PyResult<Vec<_>>>()?;
        let inner = Arc::clone(&self.inner);
        let receipts = py.detach(move || inner.append_batch(entries)).map_err(|e| client_error(py, e))?;
        Ok(receipts.into_iter().map(Receipt::from).collect())
    }

    /// One attestation with the software attester (needs `code_hash`):
    /// a fresh nonce, the measurements, signed and recorded with its
    /// verdict. A failing verdict raises `AttestationFailedError`.
    fn attest(&self, py: Python<'_>) -> PyResult<Receipt> {
        self.needs_attester()?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.attest()).map(Receipt::from).map_err(|e| client_error(py, e))
    }

    /// Attests every `seconds` on a background thread until the returned
    /// loop is stopped; each failure is passed to `on_error` (default:
    /// printed to stderr).
    #[pyo3(signature = (seconds, on_error = None))]
    fn attest_every(&self, seconds: f64, on_error: Option<Py<PyAny>>) -> PyResult<AttestLoop> {
        self.needs_attester()?;
        let interval = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| PyValueError::new_err("seconds must be positive"))?;
        let running = self.inner.attest_every(interval, move |e| match &on_error {
            // Not while the interpreter shuts down.
            Some(callback) => {
                let _ = Python::try_attach(|py| {
                    let err = client_error(py, e.clone());
                    if let Err(raised) = callback.call1(py, (err.into_value(py),)) {
                        raised.print(py);
                    }
                });
            }
            None => eprintln!("agent-ledger: attestation failed: {e}"),
        });
        Ok(AttestLoop { running: Mutex::new(Some(running)) })
    }

    /// Rotates the agent's key: the log records the rotation signed by the
    /// old and the new key. A client made from a key file generates the
    /// new key (unless one is given) and keeps it beside the file
    /// (`<file>.next`) until the log has recorded the rotation, then
    /// renames it over the file. If the outcome is unknown (no answer), the
    /// new key stays in `<file>.next` and clients refuse to start until
    /// someone checks the log (`GET /v1/agents/{id}`) and keeps the key in
    /// force. A client made from a `Key` needs `new_key`: a key generated
    /// here would exist nowhere else.
    #[pyo3(signature = (new_key = None))]
    fn rotate(&self, py: Python<'_>, new_key: Option<PyRef<'_, Key>>) -> PyResult<Receipt> {
        let new_key = match (new_key, &self.key_file) {
            (Some(k), _) => k.key.clone(),
            (None, Some(_)) => SigningKey::generate(&mut rand_core::OsRng),
            (None, None) => {
                return Err(PyValueError::new_err("rotate(new_key) needs the new key when the client was not made from a key file"))
            }
        };
        let Some(file) = self.key_file.clone() else {
            let inner = Arc::clone(&self.inner);
            return py.detach(move || inner.rotate(new_key)).map(Receipt::from).map_err(|e| client_error(py, e));
        };
        // One rotation at a time: they share the pending file.
        let _one = match self.rotating.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(ledger_exception(py, "KeyFileError", "another rotation of this key is in progress".into()))
            }
        };
        let next = pending_key_file(&file);
        ledger_client::save_key(&next, &new_key, false).map_err(|e| {
            ledger_exception(
                py,
                "KeyFileError",
                format!("{e} (a pending rotation's key: see whether the log recorded it before removing it)"),
            )
        })?;
        let inner = Arc::clone(&self.inner);
        match py.detach(move || inner.rotate(new_key)) {
            Ok(receipt) => {
                let renamed = std::fs::rename(&next, &file).and_then(|()| sync_parent(&file));
                renamed.map_err(|e| {
                    ledger_exception(
                        py,
                        "KeyFileError",
                        format!("{}: the rotation is recorded but the new key stays in {}: {e}", file.display(), next.display()),
                    )
                })?;
                Ok(receipt.into())
            }
            Err(e) => {
                // Only a refusal, or no connection at all, says for sure that
                // the log did not record it.
                let refused = matches!(&e, ClientError::Api { status, .. } if (400..500).contains(status))
                    || matches!(e, ClientError::Unavailable { .. } | ClientError::Busy(_));
                if refused {
                    let _ = std::fs::remove_file(&next);
                }
                Err(client_error(py, e))
            }
        }
    }

    /// The trust score of `agent_id` (default: this agent) now, with its
    /// components, as a dict.
    #[pyo3(signature = (agent_id = None))]
    fn trust(&self, py: Python<'_>, agent_id: Option<&str>) -> PyResult<Py<PyAny>> {
        let agent = match agent_id {
            Some(id) => {
                verifier::AgentId::parse(id).map_err(|reason| invalid_agent_id(py, format!("invalid agent id {id:?}: {reason}")))?
            }
            None => self.inner.agent().clone(),
        };
        let inner = Arc::clone(&self.inner);
        let score = py.detach(move || inner.trust(&agent)).map_err(|e| client_error(py, e))?;
        let value = serde_json::to_value(&score).map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_py(py, &value)
    }

    /// Subscribes to the log's events (`types` among "revocation",
    /// "reinstatement", "risk-level-change", "signal", "escalation",
    /// "decision"; default all), live from now, from the first entry
    /// (`from_first`) or after an index (`after`).
    #[pyo3(signature = (types = None, agent = None, trust_domain = None, after = None, from_first = false))]
    fn events(
        &self,
        py: Python<'_>,
        types: Option<Vec<String>>,
        agent: Option<&str>,
        trust_domain: Option<&str>,
        after: Option<u64>,
        from_first: bool,
    ) -> PyResult<EventStream> {
        let mut filter = EventFilter::new();
        if let Some(types) = types {
            let parsed = types
                .iter()
                .map(|t| {
                    EventType::ALL.into_iter().find(|k| k.as_str() == t).ok_or_else(|| {
                        let known: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
                        PyValueError::new_err(format!("unknown event type {t:?}; one of {}", known.join(", ")))
                    })
                })
                .collect::<PyResult<Vec<_>>>()?;
            filter = filter.types(parsed);
        }
        if let Some(a) = agent {
            filter = filter.agent(a);
        }
        if let Some(d) = trust_domain {
            filter = filter.trust_domain(d);
        }
        if let Some(i) = after {
            filter = filter.after(i);
        }
        if from_first {
            filter = filter.from_first();
        }
        let inner = Arc::clone(&self.inner);
        let stream = py.detach(move || inner.events(filter)).map_err(|e| client_error(py, e))?;
        Ok(EventStream::new(stream))
    }

    /// Asks for an action token for `action` on `resource`, pinning
    /// `constraints` (`{"sql": ...}`, `{"amount_max": n}`, `{"target": id}`).
    /// Returns the token (`token`, `jti`, `expires`, ...) or, for a class
    /// that needs a human, the escalation (`escalation`, `status`:
    /// "pending", ...). Refusals raise (`ScoreTooLowError`, ...).
    #[pyo3(signature = (action, resource, constraints = None, lifetime_s = None))]
    fn request_token(
        &self,
        py: Python<'_>,
        action: &str,
        resource: &str,
        constraints: Option<&Bound<'_, PyAny>>,
        lifetime_s: Option<u32>,
    ) -> PyResult<Py<PyAny>> {
        let constraints = constraints.map(to_json).transpose()?.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        let (inner, action, resource) = (Arc::clone(&self.inner), action.to_owned(), resource.to_owned());
        let grant = py.detach(move || inner.request_token(&action, &resource, constraints, lifetime_s)).map_err(|e| client_error(py, e))?;
        let value = match grant {
            TokenGrant::Token(t) => serde_json::to_value(t),
            TokenGrant::Escalated(e) => serde_json::to_value(e),
        }
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_py(py, &value)
    }

    /// Polls escalation `escalation` until it is decided or `timeout_s`
    /// passes; returns its last status (with its `token` once approved).
    #[pyo3(signature = (escalation, every_s = 1.0, timeout_s = 60.0))]
    fn wait_for_escalation(&self, py: Python<'_>, escalation: u64, every_s: f64, timeout_s: f64) -> PyResult<Py<PyAny>> {
        let every = Duration::try_from_secs_f64(every_s).map_err(|_| PyValueError::new_err("every_s must be non-negative"))?;
        let timeout = Duration::try_from_secs_f64(timeout_s).map_err(|_| PyValueError::new_err("timeout_s must be non-negative"))?;
        let inner = Arc::clone(&self.inner);
        let status = py.detach(move || inner.wait_for_escalation(escalation, every, timeout)).map_err(|e| client_error(py, e))?;
        to_py(py, &serde_json::to_value(status).map_err(|e| PyValueError::new_err(e.to_string()))?)
    }

    /// A disclosure bundle of one of this agent's entries
    /// (`{"reveal": [...], "prove": [{"field", "le"?, "ge"?}]}`), to check
    /// offline with `verify_disclosure`.
    fn disclose(&self, py: Python<'_>, index: u64, request: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let request = to_json(request)?;
        let inner = Arc::clone(&self.inner);
        let bundle = py.detach(move || inner.disclose(index, &request)).map_err(|e| client_error(py, e))?;
        to_py(py, &bundle)
    }

    /// The log's signed trust statement about `agent_id` (default: this
    /// agent), to show a peer, who checks it with `verify_peer`.
    #[pyo3(signature = (agent_id = None))]
    fn statement(&self, py: Python<'_>, agent_id: Option<&str>) -> PyResult<String> {
        let agent = agent_id.map_or_else(|| self.inner.agent().as_str().to_owned(), str::to_owned);
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.statement(&agent)).map_err(|e| client_error(py, e))
    }

    fn __repr__(&self) -> String {
        format!("Client(url={:?}, agent_id={:?})", self.url, self.inner.agent().as_str())
    }
}

impl Client {
    fn needs_attester(&self) -> PyResult<()> {
        if self.attests {
            Ok(())
        } else {
            Err(PyValueError::new_err("attesting needs the agent's code_hash: Client(..., code_hash=\"<hex SHA-256>\")"))
        }
    }

    fn append_value(&self, py: Python<'_>, entry: Value) -> PyResult<Receipt> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.append(entry)).map(Receipt::from).map_err(|e| client_error(py, e))
    }
}

/// Where a rotation keeps the new key until the log has recorded it.
fn pending_key_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Makes a rename in `file`'s directory durable.
fn sync_parent(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

/// Registers a passport with the admin token (an operator's call):
/// `agent`, `public_key`, `code_hash`, `owner`, `purpose`, and optionally
/// `model_hash` and `tpm_ak`.
#[pyfunction]
fn register(py: Python<'_>, url: &str, admin_token: &str, passport: &Bound<'_, PyAny>) -> PyResult<Receipt> {
    let passport = to_json(passport)?;
    let (url, token) = (url.to_owned(), admin_token.to_owned());
    py.detach(move || ledger_client::Client::register(&url, &token, &passport)).map(Receipt::from).map_err(|e| client_error(py, e))
}

/// An entry exactly as `Client.append_entry` sends it, with no network:
/// `agent` and `seq` set, hidden fields committed with randomness drawn
/// from ChaCha20 seeded with `seed` (32 bytes), signed for the log named
/// `origin`, openings beside. The same inputs give the same bytes as the
/// Rust SDK's `seal_entry`. For test vectors only: a seed used twice
/// links the commitments made with it.
#[pyfunction]
fn seal_entry(
    py: Python<'_>,
    key: PyRef<'_, Key>,
    origin: &str,
    agent_id: &str,
    seq: u64,
    entry: &Bound<'_, PyAny>,
    seed: &[u8],
) -> PyResult<Py<PyAny>> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| PyValueError::new_err("seed is 32 bytes"))?;
    let agent =
        verifier::AgentId::parse(agent_id).map_err(|reason| invalid_agent_id(py, format!("invalid agent id {agent_id:?}: {reason}")))?;
    let entry = to_json(entry)?;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let sealed = ledger_client::seal_entry(entry, origin, &agent, seq, &key.key, &mut rng).map_err(|e| client_error(py, e))?;
    to_py(py, &sealed)
}

/// The log's verifier key (`name+id+base64`, as `GET /v1/log/key` gives).
fn note_verifier(py: Python<'_>, key: &str) -> PyResult<verifier::NoteVerifier> {
    verifier::VerifierKey::parse(key.trim())
        .map(verifier::NoteVerifier::new)
        .map_err(|e| verification_error(py, format!("the log key: {e}")))
}

/// Text or bytes given directly, or read from a path.
fn bytes_or_file(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let path: PathBuf = obj.extract().map_err(|_| PyTypeError::new_err("bytes, or the path of a file"))?;
    std::fs::read(&path).map_err(PyErr::from)
}

/// Checks a signed checkpoint note with the log's key; returns its
/// `origin`, `size` and `root`.
#[pyfunction]
fn verify_checkpoint(py: Python<'_>, key: &str, checkpoint: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let note = match checkpoint.cast::<PyBytes>() {
        Ok(b) => String::from_utf8(b.as_bytes().to_vec()).map_err(|_| verification_error(py, "the checkpoint is not UTF-8".into()))?,
        Err(_) => checkpoint.extract::<String>()?,
    };
    let cp = verifier::Checkpoint::open(&note, &note_verifier(py, key)?).map_err(|e| verification_error(py, format!("checkpoint: {e}")))?;
    to_py(py, &cp.to_json())
}

/// Checks a tlog-proof file (`GET /v1/proof/bundle`) with no network, as
/// `ledger-verify proof` does: the checkpoint's signature and the
/// inclusion proof, and with `entry`, that these are the entry's bytes.
#[pyfunction]
#[pyo3(signature = (key, proof, entry = None))]
fn verify_proof_file(py: Python<'_>, key: &str, proof: &Bound<'_, PyAny>, entry: Option<&[u8]>) -> PyResult<Py<PyAny>> {
    let verifier = note_verifier(py, key)?;
    let text = String::from_utf8(bytes_or_file(proof)?).map_err(|_| verification_error(py, "the proof file is not UTF-8".into()))?;
    let parsed = verifier::tlog_proof::TlogProof::parse(&text).map_err(|e| verification_error(py, e.to_string()))?;
    let v = parsed.verify(&verifier, entry).map_err(|e| verification_error(py, e.to_string()))?;
    to_py(py, &serde_json::json!({ "index": v.index, "leaf_hash": B64.encode(v.leaf_hash), "checkpoint": v.checkpoint.to_json() }))
}

/// Checks a disclosure bundle with no network, as `ledger-verify
/// disclosure` does; returns what it establishes (`public`, `revealed`,
/// `proven`, `proven_at_append`, `undisclosed`).
#[pyfunction]
fn verify_disclosure(py: Python<'_>, key: &str, bundle: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let verifier = note_verifier(py, key)?;
    let bytes = match bundle.cast::<PyDict>() {
        Ok(d) => to_json(d.as_any())?.to_string().into_bytes(),
        Err(_) => bytes_or_file(bundle)?,
    };
    let parsed = verifier::disclosure::DisclosureBundle::parse(&bytes).map_err(|e| verification_error(py, e.to_string()))?;
    let v =
        py.detach(|| verifier::disclosure::verify(&parsed, &verifier, zk::params())).map_err(|e| verification_error(py, e.to_string()))?;
    to_py(py, &v.to_json())
}

/// Checks a peer's trust statement with no network: signed by the log
/// (`log_key`), about `peer`, at most `max_age_s` old, the peer not revoked
/// and scoring at least `min_score`, with a passing attestation proven into
/// a checkpoint; `token_key` is the log's token key (base64, from
/// `GET /v1/tokens/key`). Returns the statement's claims.
#[pyfunction]
#[pyo3(signature = (statement, peer, *, token_key, log_key, min_score, max_age_s))]
fn verify_peer(
    py: Python<'_>,
    statement: &str,
    peer: &str,
    token_key: &str,
    log_key: &str,
    min_score: u8,
    max_age_s: f64,
) -> PyResult<Py<PyAny>> {
    let bytes: [u8; 32] = B64
        .decode(token_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| verification_error(py, "the token key is not 32 bytes of base64".into()))?;
    let token_key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| verification_error(py, "the token key is not an Ed25519 key".into()))?;
    let max_age = Duration::try_from_secs_f64(max_age_s).map_err(|_| PyValueError::new_err("max_age_s must be non-negative"))?;
    let check = ledger_client::PeerCheck { token_key, log: note_verifier(py, log_key)? };
    let verified =
        ledger_client::verify_peer(&check, statement, peer, min_score, max_age).map_err(|e| verification_error(py, e.to_string()))?;
    let claims = serde_json::json!({
        "issuer": verified.issuer, "subject": verified.subject, "issued_at": verified.issued_at,
        "score": verified.score, "level": verified.level, "revoked": verified.revoked,
        "as_of_index": verified.as_of_index, "attestation_index": verified.attestation.as_ref().map(|a| a.index),
    });
    to_py(py, &claims)
}

/// Every error code the server may answer with (`agent_ledger.errors` has
/// a class for each).
#[pyfunction]
fn error_codes() -> Vec<&'static str> {
    ledger_client::ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Key>()?;
    m.add_class::<Receipt>()?;
    m.add_class::<Client>()?;
    m.add_class::<AttestLoop>()?;
    m.add_class::<EventStream>()?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(seal_entry, m)?)?;
    m.add_function(wrap_pyfunction!(verify_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(verify_proof_file, m)?)?;
    m.add_function(wrap_pyfunction!(verify_disclosure, m)?)?;
    m.add_function(wrap_pyfunction!(verify_peer, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    Ok(())
}

"""LangChain callbacks that put an agent's tool and model calls in the ledger.

`LedgerCallbackHandler` signs an entry before every tool runs and one when
it ends or fails, and one entry per model call. Tools named high-risk by
the `ToolPolicy` also need a fresh attestation and an action token
(docs/POLICY.md, "Action tokens") first: the tool reads its token with
`current_token()` and presents it to the resource it acts on.

Each tool's start entry is recorded (durably: the log has synced it) before
the tool runs. What happens after (a tool's end or error, a model call) is
deferred and goes in the same batch as the next start entry, so one tool
call costs one round trip to the log and the log keeps the calls in the
order they happened; `flush()` (or `close()`, or leaving the `with` block,
or the interpreter exiting) records what is still deferred.

The handler fails closed: when the ledger refuses (revoked agent, score too
low, a class that waits for a human) or cannot be reached, the tool does
not run and the caller gets `ToolRefused`. That holds because LangChain
calls `on_tool_start` before the tool and re-raises a handler's exception
when the handler sets `raise_error`.

Everything in an entry is public forever, so tool inputs, outputs, prompts
and responses are never logged, not even as plain hashes (a hash of a
guessable input gives the input away). Their SHA-256 digests go in hidden
fields instead, committed with a salt on the agent's side, so the agent can
disclose them later (`Client.disclose`) and nobody can confirm a guess
before then. One exception is the log's own: a token that pins an SQL
statement publishes the statement's SHA-256 in its `token` entry
(docs/SECURITY.md, "SQL text is never logged, but its hash is public").

    from agent_ledger import Client
    from agent_ledger.langchain import LedgerCallbackHandler, ToolPolicy

    client = Client(url, agent_id, "agent.key", code_hash=code_hash)
    policy = ToolPolicy(high_risk={"run_sql"}, hidden_fields=["customer"])
    with LedgerCallbackHandler(client, policy, attest_every_s=600) as ledger:
        agent.invoke(request, config={"callbacks": [ledger]})
"""

from __future__ import annotations

import contextvars
import logging
import re
import atexit
import threading
import weakref
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage, message_to_dict
from langchain_core.outputs import LLMResult

from ._native import AttestLoop, Client
from .calls import END, ERROR, INPUT_FIELD, OUTPUT_FIELD, START, canonical_json, resource_of, sha256_hex, sql_constraints  # noqa: F401 (resource_of: for policies)
from .errors import ApiError, LedgerError

__all__ = ["LedgerCallbackHandler", "ToolPolicy", "ToolRefused", "current_token"]

logger = logging.getLogger(__name__)

# The log's limits on an action entry (docs/FORMAT.md, "Actions" and
# "Hidden fields"), checked here so a refusal names the tool and the rule.
MAX_ACTION_CHARS = 256
MAX_HIDDEN_FIELDS = 16
MAX_HIDDEN_STR_CHARS = 4096
MAX_HIDDEN_U64 = 2**53 - 1
_HIDDEN_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")

#: At most this many entries wait for the next tool start before they are
#: recorded on their own.
MAX_DEFERRED = 64


_current_token: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "agent_ledger_action_token", default=None
)


def current_token() -> Optional[str]:
    """The action token (`v4.public.…`) granted to the high-risk tool now
    running in this context, or None (no tool, or one that needs none).

    A bearer credential: present it to the tool's resource, never log it.
    """
    return _current_token.get()


class ToolRefused(LedgerError):
    """A tool was stopped before it ran: the ledger refused it, or could not
    record it. `code` and `status` are the server's error (None when the
    ledger could not be reached; the cause is chained), `escalation` the id
    of the escalation a human must decide first."""

    def __init__(
        self,
        tool: str,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        escalation: Optional[int] = None,
    ) -> None:
        super().__init__(f"tool {tool!r} refused: {message}")
        self.tool = tool
        self.code = code
        self.status = status
        self.escalation = escalation

    @classmethod
    def because(cls, tool: str, step: str, error: LedgerError) -> "ToolRefused":
        """The refusal for a ledger error at `step`, with the error's code."""
        return cls(tool, f"{step}: {error}", code=error.code, status=error.status)


@dataclass
class ToolPolicy:
    """Which tools need an action token, and what of their input is hidden.

    `high_risk`: names of tools that need a fresh attestation and an action
    token before they run. `hidden_fields`: names of tool-input members
    whose values are recorded, as commitments only, in the start entry.
    `resource`: maps (tool name, input) to the resource acted on (default:
    `default_resource`). `constraints`: maps (tool name, input) to the
    parameters the token pins (default: `default_constraints`).
    """

    high_risk: AbstractSet[str] = frozenset()
    hidden_fields: List[str] = field(default_factory=list)
    resource: Optional[Callable[[str, Any], str]] = None
    constraints: Optional[Callable[[str, Any], Dict[str, Any]]] = None

    def __post_init__(self) -> None:
        self.high_risk = frozenset(self.high_risk)
        self.hidden_fields = list(self.hidden_fields)
        # One hidden field is always the input's digest.
        if len(self.hidden_fields) > MAX_HIDDEN_FIELDS - 1:
            raise ValueError(f"at most {MAX_HIDDEN_FIELDS - 1} hidden fields (one more holds the input's digest)")
        for name in self.hidden_fields:
            if not isinstance(name, str) or not _HIDDEN_FIELD_NAME.match(name):
                raise ValueError(f"hidden field {name!r}: 1 to 64 characters of [A-Za-z0-9_.-]")
            if name == INPUT_FIELD:
                raise ValueError(f"hidden field {INPUT_FIELD!r} is the input's digest")

    def resource_for(self, tool: str, tool_input: Any) -> str:
        """The resource a call of `tool` acts on."""
        return (self.resource or default_resource)(tool, tool_input)

    def constraints_for(self, tool: str, tool_input: Any) -> Dict[str, Any]:
        """The parameters the token for a call of `tool` pins."""
        return (self.constraints or default_constraints)(tool, tool_input)

    def hidden_for(self, tool_input: Any) -> Dict[str, Dict[str, Any]]:
        """The `hidden_fields` members present in `tool_input`, in the form
        `Client.append` commits."""
        if not isinstance(tool_input, Mapping):
            return {}
        return {name: hidden_value(name, tool_input[name]) for name in self.hidden_fields if name in tool_input}


def default_resource(tool: str, tool_input: Any) -> str:
    """`tool/<name>`. The resource is public forever, and an input member
    (a path, a URL) may be a secret: publish one only through
    `ToolPolicy.resource`, e.g. `lambda tool, args: resource_of(args, "db",
    f"tool/{tool}")`."""
    return f"tool/{tool}"


def default_constraints(tool: str, tool_input: Any) -> Dict[str, Any]:
    """Pins the input's `sql` statement, if any, by its SHA-256 (`sql_constraints`)."""
    return sql_constraints(tool_input)


def hidden_value(name: str, value: Any) -> Dict[str, Any]:
    """`value` as a hidden field: an integer the log can prove ranges about
    stays `u64`; anything else is committed as text (JSON if not a str)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_HIDDEN_U64:
        return {"u64": value}
    text = value if isinstance(value, str) else canonical_json(value)
    if len(text) > MAX_HIDDEN_STR_CHARS:
        # Truncating would commit to something the tool never saw.
        raise ValueError(f"hidden field {name!r} is longer than {MAX_HIDDEN_STR_CHARS} characters")
    return {"str": text}


class _ToolRun(NamedTuple):
    """A tool call between its start and end entries."""

    action: str
    resource: str
    token: contextvars.Token


class _ModelRun(NamedTuple):
    """A model call between its start and its end."""

    resource: str
    prompt_sha256: str


class LedgerCallbackHandler(BaseCallbackHandler):
    """Records every tool call (before it runs, and when it ends or fails)
    and every model call as signed entries of `client`'s agent, and asks
    for an action token before each high-risk tool.

    A refusal, or a ledger that cannot record the start of a tool (with
    the entries deferred before it), raises `ToolRefused` and the tool does
    not run; the deferred entries stay queued and go with the next attempt.
    `flush()` and `close()` raise the ledger's error when what was done
    cannot be recorded.
    """

    raise_error = True
    # Inline, so that async runs call the handler in the tool's own context
    # (the token must be visible to the tool) rather than in a copy on an
    # executor; the native calls release the GIL but hold the event loop
    # for one round trip.
    run_inline = True

    def __init__(
        self,
        client: Client,
        policy: Optional[ToolPolicy] = None,
        attest_every_s: Optional[float] = None,
        log_llm: bool = True,
    ) -> None:
        self.client = client
        self.policy = policy if policy is not None else ToolPolicy()
        self.log_llm = log_llm
        # Callbacks of concurrent runs may arrive from several threads.
        self._lock = threading.Lock()
        self._tools: Dict[UUID, _ToolRun] = {}
        self._models: Dict[UUID, _ModelRun] = {}
        # Entries of what already happened, waiting for the next start
        # entry; `_record_lock` keeps one batch in flight, so the log gets
        # them in order.
        self._deferred: List[Dict[str, Any]] = []
        self._record_lock = threading.Lock()
        _live_handlers.add(self)
        self._attest_loop: Optional[AttestLoop] = None
        if attest_every_s is not None:
            self._attest_loop = client.attest_every(attest_every_s, on_error=_log_attestation_failure)

    def flush(self) -> None:
        """Records the deferred entries now; raises the ledger's error if it
        cannot (they stay queued)."""
        with self._lock:
            waiting = bool(self._deferred)
        if waiting:
            self._record([])

    def close(self) -> None:
        """Stops the attestation loop, if any, and records the deferred
        entries (idempotent)."""
        loop, self._attest_loop = self._attest_loop, None
        if loop is not None:
            loop.stop()
        self.flush()

    def __enter__(self) -> "LedgerCallbackHandler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ignore_llm(self) -> bool:
        """LangChain skips the model callbacks when `log_llm` is off."""
        return not self.log_llm

    @property
    def ignore_chat_model(self) -> bool:
        """LangChain skips `on_chat_model_start` when `log_llm` is off."""
        return not self.log_llm

    # Tools.

    def on_tool_start(
        self,
        serialized: Optional[Dict[str, Any]],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        inputs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Asks for a token if the tool is high-risk, then signs the start
        entry; raises `ToolRefused`, so the tool does not run, if either
        fails."""
        name = _tool_name(serialized, kwargs)
        action = f"tool.{name}"
        tool_input = inputs if inputs is not None else input_str
        if len(action) > MAX_ACTION_CHARS:
            raise ToolRefused(name, f"the action name is longer than {MAX_ACTION_CHARS} characters")
        try:
            hidden = {INPUT_FIELD: {"str": sha256_hex(_input_text(input_str, inputs))}}
            hidden.update(self.policy.hidden_for(tool_input))
        except ValueError as e:
            raise ToolRefused(name, str(e)) from e
        resource = self.policy.resource_for(name, tool_input)
        data: Dict[str, Any] = {"phase": START, "call_id": str(run_id)}
        grant = self._authorize(name, action, resource, tool_input) if name in self.policy.high_risk else None
        if grant is not None:
            data["token_jti"] = grant["jti"]
        try:
            self._record([_entry(action, resource, data, hidden)])
        except LedgerError as e:
            raise ToolRefused.because(name, "recording the call", e) from e
        token = _current_token.set(grant["token"] if grant is not None else None)
        with self._lock:
            self._tools[run_id] = _ToolRun(action, resource, token)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        """Signs the end entry, with the output's digest hidden."""
        run = self._finish_tool(run_id)
        if run is not None:
            data = {"phase": END, "call_id": str(run_id)}
            hidden = {OUTPUT_FIELD: {"str": sha256_hex(_output_text(output))}}
            self._defer(_entry(run.action, run.resource, data, hidden))

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        """Signs the error entry: the exception's type only, since its
        message may quote the input."""
        run = self._finish_tool(run_id)
        if run is not None:
            data = {"phase": ERROR, "call_id": str(run_id), "error": type(error).__name__}
            try:
                self._defer(_entry(run.action, run.resource, data))
            except LedgerError as e:
                # LangChain raises this instead of the tool's error: keep both.
                raise e from error

    def _authorize(self, name: str, action: str, resource: str, tool_input: Any) -> Dict[str, Any]:
        """A fresh attestation, then the token: the granted token's answer
        (`token`, `jti`, …), or `ToolRefused`."""
        constraints = self.policy.constraints_for(name, tool_input)
        try:
            # What happened before goes in the log before the attestation.
            self.flush()
            self.client.attest()
        except LedgerError as e:
            raise ToolRefused.because(name, "attesting", e) from e
        except ValueError as e:  # a client made without its code hash
            raise ToolRefused(name, f"attesting: {e}") from e
        try:
            grant = self.client.request_token(action, resource, constraints)
        except LedgerError as e:
            raise ToolRefused.because(name, f"the token for {action} on {resource}", e) from e
        if "token" not in grant:
            raise ToolRefused(
                name,
                f"{action} on {resource} waits for a human: escalation {grant['escalation']} is {grant['status']}",
                escalation=grant["escalation"],
            )
        return grant

    def _finish_tool(self, run_id: UUID) -> Optional[_ToolRun]:
        """Forgets a tool call and withdraws its token from the context."""
        with self._lock:
            run = self._tools.pop(run_id, None)
        if run is not None:
            try:
                _current_token.reset(run.token)
            except ValueError:
                # Ended in another context than it started in: that one's
                # value is not ours to reset; withdraw the token here.
                _current_token.set(None)
        return run

    # Models: one entry per call, at its end, with both digests.

    def on_llm_start(
        self,
        serialized: Dict[str, Any],
        prompts: List[str],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Remembers the prompts' digest until the call ends."""
        self._start_model(run_id, serialized, kwargs.get("invocation_params"), metadata, canonical_json(prompts))

    def on_chat_model_start(
        self,
        serialized: Dict[str, Any],
        messages: List[List[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Remembers the messages' digest until the call ends."""
        prompt = canonical_json([[message_to_dict(m) for m in batch] for batch in messages])
        self._start_model(run_id, serialized, kwargs.get("invocation_params"), metadata, prompt)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        """Signs `llm.call` with the prompt's and the response's digests hidden."""
        run = self._finish_model(run_id)
        if run is not None:
            hidden = {
                "prompt_sha256": {"str": run.prompt_sha256},
                "response_sha256": {"str": sha256_hex(_response_text(response))},
            }
            self._defer(_entry("llm.call", run.resource, {"call_id": str(run_id)}, hidden))

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        """Signs `llm.call` with the prompt's digest and the error's type."""
        run = self._finish_model(run_id)
        if run is not None:
            data = {"call_id": str(run_id), "error": type(error).__name__}
            self._defer(_entry("llm.call", run.resource, data, {"prompt_sha256": {"str": run.prompt_sha256}}))

    def _start_model(
        self,
        run_id: UUID,
        serialized: Optional[Dict[str, Any]],
        invocation_params: Optional[Dict[str, Any]],
        metadata: Optional[Dict[str, Any]],
        prompt: str,
    ) -> None:
        model = _model_name([(invocation_params, "model"), (invocation_params, "model_name"),
                             (metadata, "ls_model_name"), (serialized, "name")])
        with self._lock:
            self._models[run_id] = _ModelRun(f"model/{model}", sha256_hex(prompt))

    def _finish_model(self, run_id: UUID) -> Optional[_ModelRun]:
        with self._lock:
            return self._models.pop(run_id, None)

    # Recording.

    def _defer(self, entry: Dict[str, Any]) -> None:
        """Queues the entry of something that already happened for the next
        batch; records the queue now once it is `MAX_DEFERRED` long."""
        with self._lock:
            self._deferred.append(entry)
            full = len(self._deferred) >= MAX_DEFERRED
        if full:
            self.flush()

    def _record(self, entries: List[Dict[str, Any]]) -> None:
        """Appends the deferred entries, then `entries`, in one batch (all
        or none); on failure the deferred ones stay queued."""
        with self._record_lock:
            with self._lock:
                batch = self._deferred + entries
                taken = len(self._deferred)
            if not batch:
                return
            try:
                self.client.append_batch(batch)
            except ApiError as e:
                if not (taken and e.status is not None and 400 <= e.status < 500):
                    raise
                # The log refused the batch for good (a deferred entry it
                # will never take, or one it already has: `sequence_replayed`
                # after a lost answer). Holding them would refuse every
                # later tool; they are dropped, said so, and `entries` go
                # alone.
                logger.error("dropping %d entries of finished calls the log refused: %s", taken, e)
                with self._lock:
                    del self._deferred[:taken]
                if entries:
                    self.client.append_batch(entries)
                return
            with self._lock:
                del self._deferred[:taken]


def _entry(action: str, resource: str, data: Dict[str, Any], hidden: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """An action entry as `Client.append_batch` takes it."""
    entry: Dict[str, Any] = {"kind": "action", "action": action, "resource": resource, "data": data}
    if hidden:
        entry["hidden"] = hidden
    return entry


# Handlers still open when the interpreter exits are closed then: their
# deferred entries recorded, their attestation loops stopped.
_live_handlers: "weakref.WeakSet[LedgerCallbackHandler]" = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for handler in list(_live_handlers):
        try:
            handler.close()
        except LedgerError as e:
            logger.error("entries of finished calls could not be recorded: %s", e)


def _tool_name(serialized: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> str:
    name = (serialized or {}).get("name") or kwargs.get("name")
    if not isinstance(name, str) or not name:
        # Without a name the policy cannot tell whether it is high-risk.
        raise ToolRefused("?", "the tool has no name")
    return name


def _input_text(input_str: str, inputs: Optional[Dict[str, Any]]) -> str:
    """What the input digest covers: the arguments as canonical JSON, which
    whoever holds them can recompute, else LangChain's input string."""
    return canonical_json(inputs) if inputs is not None else input_str


def _output_text(output: Any) -> str:
    """What the output digest covers: a tool message's content (what the
    tool returned, however it was called), else the output's `str`."""
    if isinstance(output, ToolMessage):
        return output.content if isinstance(output.content, str) else canonical_json(output.content)
    return str(output)


def _response_text(response: LLMResult) -> str:
    """The generations as canonical JSON: each message (tool calls
    included) or, for a text model, each text."""
    return canonical_json([
        [message_to_dict(g.message) if hasattr(g, "message") else g.text for g in batch]
        for batch in response.generations
    ])


def _model_name(sources: Iterable[Tuple[Optional[Mapping[str, Any]], str]]) -> str:
    """The first non-empty str among (mapping, key) `sources`, else "unknown"."""
    for mapping, key in sources:
        value = (mapping or {}).get(key)
        if isinstance(value, str) and value:
            return value
    return "unknown"


def _log_attestation_failure(error: Exception) -> None:
    # The loop keeps going; a high-risk tool still attests on its own.
    logger.warning("periodic attestation failed: %s", error)

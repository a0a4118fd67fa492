"""An MCP proxy that records and guards every tool call in the ledger.

`agent-ledger-mcp-guard` sits between an MCP client (the agent's host) and
an existing MCP server, and speaks MCP on both sides:

    agent-ledger-mcp-guard --ledger http://127.0.0.1:8080 \\
        --agent spiffe://example.org/agent/billing --key-file billing.key \\
        --code-hash c0c0…c0 --high-risk run_sql -- python db_server.py

Upstream is a stdio server command (after `--`) or a streamable HTTP
server (`--upstream-url URL`). Downstream, the guard serves stdio (the
default: an MCP client launches it in place of the server) or streamable
HTTP at `/mcp` (`--listen HOST:PORT`).

`tools/list` is forwarded as is. Each `tools/call`:

1. for a `--high-risk` tool: a fresh attestation, then an action token for
   `tool.<name>` on the call's resource (docs/POLICY.md, "Action tokens"),
   an SQL statement pinned by its SHA-256; the token goes to the upstream
   in the request's `_meta` under `agent-ledger/token` and nowhere else;
2. a signed `tool.<name>` action entry, `data.phase = "start"`, appended
   (and acknowledged by the log) before the call is forwarded;
3. the call, forwarded;
4. a second `tool.<name>` entry, `data.phase = "end"` with `is_error`
   (`"error"` when no answer came), paired with the first by `call_id`;
   the same entries as the LangChain handler's (docs/FORMAT.md, "Tool
   calls").

Everything in an entry is public forever, so arguments and results are
never logged, not even as plain hashes (the hash of a guessable argument,
a path or a query, gives it away). Their SHA-256 digests go in hidden
fields, committed with a salt by the agent's side, which the agent can
disclose later (`Client.disclose`): `input_sha256`, of the arguments
object as `canonical_json` (`{}` when absent), and `output_sha256`, of the
upstream's `CallToolResult` (its wire form, nulls left out) as
`canonical_json`.

A refusal forwards nothing and answers the client with a JSON-RPC error,
code `LEDGER_REFUSED` (-31403), message
`agent-ledger refused <tool>: <code>: <message>` and `data`
`{"tool", "reason", "code", "status"}` (`reason`: `refused`, the ledger's
`code` beside it; `escalation`, with the escalation's index; `unreachable`;
`unknown_tool`, a name the upstream does not list, which is neither logged
nor forwarded; `error`).

The entry's `resource` is public: it is `mcp/<tool>` unless the operator
names an argument to use instead (`--resource-arg run_sql=db`), since an
argument (a path, a URL) may be a secret.

A JSON-RPC error rather than a `CallToolResult` with `isError`: nothing
ran, so there is no tool result, and the SDK's `ClientSession.call_tool`
raises it as `MCPError` carrying the code and data, which no client can
mistake for a tool's output (nor a model for one it may retry around).
Refused are: a revoked or quarantined agent (`agent_revoked`), a token the
log refuses (`score_too_low`, …) or that waits for a human (`escalation`),
and, unless `--fail-open`, a ledger that cannot be reached. With
`--fail-open` a ledger to which no connection can be made only logs a
warning on stderr and a call to a tool that is not high-risk is forwarded
unrecorded; a high-risk tool never runs without its token, and a ledger
that answers (with a refusal, busy, or unreadably) is obeyed. A result the ledger cannot record (after the call ran) is
withheld with the same error code, `reason` `result_unrecorded`.

Only tools are proxied: prompts, resources, notifications and
server-initiated requests (sampling, elicitation) are not, so nothing
reaches the upstream around the guard, and the client's `_meta` (progress
tokens) is not forwarded either. The guard speaks both protocol eras
downstream (the `initialize` handshake and 2026-07-28) and the handshake
upstream. On stdio, stdout carries protocol messages only; logs go to
stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import anyio
import anyio.to_thread
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from ._native import AttestLoop, Client, Key
from .calls import END, ERROR, INPUT_FIELD, OUTPUT_FIELD, START, canonical_json, resource_of, sha256_hex, sql_constraints
from .errors import LedgerError, LedgerUnavailable

__all__ = [
    "LEDGER_REFUSED",
    "TOKEN_META_KEY",
    "Admission",
    "GuardOptions",
    "LedgerGuard",
    "Refusal",
    "build_proxy",
    "canonical_json",
    "default_constraints",
    "default_resource",
    "forward_call",
    "main",
    "open_upstream",
    "parse_args",
    "run_proxy",
    "sha256_hex",
]

logger = logging.getLogger("agent_ledger.mcp_guard")

PROGRAM = "agent-ledger-mcp-guard"

#: The JSON-RPC error code of a call the guard refused (outside the range
#: JSON-RPC and MCP reserve, -32768 to -32000).
LEDGER_REFUSED = -31403

#: The `_meta` key under which a high-risk call's action token is forwarded.
TOKEN_META_KEY = "agent-ledger/token"


#: Failures that mean the ledger could not be reached (no connection was
#: ever made, so nothing was refused): the only ones `--fail-open` forwards
#: through. A busy ledger answered; a transport error may be a reply that
#: could not be read.
UNREACHABLE = (LedgerUnavailable,)

#: Pages of `tools/list` read to find a tool not seen yet.
MAX_LIST_PAGES = 100

#: How long the upstream server may take to start and answer `initialize`.
UPSTREAM_START_TIMEOUT_S = 60.0


def default_resource(tool: str, arguments: Mapping[str, Any], resource_arg: Optional[str] = None) -> str:
    """`mcp/<tool>`, or with `resource_arg` (`--resource-arg TOOL=ARG`) the
    argument of that name when it is a non-empty str. The resource is
    public: an argument is published only when the operator names it."""
    fallback = f"mcp/{tool}"
    return resource_of(arguments, resource_arg, fallback) if resource_arg else fallback


def default_constraints(arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """Pins the arguments' `sql` statement, if any, by its SHA-256 (`sql_constraints`)."""
    return sql_constraints(arguments)


class Refusal(Exception):
    """Why a call was not forwarded, or its result not returned: `reason`
    (`refused`, `escalation`, `unreachable`, `error`, and for a result,
    `result_unrecorded`), the ledger's `code` and `status` when it answered
    with an error, the `escalation` a human must decide first."""

    def __init__(
        self,
        tool: str,
        reason: str,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        escalation: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.tool = tool
        self.reason = reason
        self.message = message
        self.code = code
        self.status = status
        self.escalation = escalation

    @classmethod
    def of(cls, tool: str, step: str, error: Exception, reason: Optional[str] = None) -> "Refusal":
        """The refusal for `error` raised at `step`."""
        if isinstance(error, LedgerError) and error.code is not None:
            return cls(tool, reason or "refused", f"{error.code}: {step}: {error.message}",
                       code=error.code, status=error.status)
        if isinstance(error, UNREACHABLE):
            return cls(tool, reason or "unreachable", f"the ledger cannot be reached ({step}): {error}")
        return cls(tool, reason or "error", f"{step}: {type(error).__name__}: {error}")

    def to_mcp_error(self) -> MCPError:
        """The JSON-RPC error the client gets: `LEDGER_REFUSED`, the
        message, and `data` with `tool`, `reason`, `code`, `status`,
        `escalation`."""
        data = {"tool": self.tool, "reason": self.reason, "code": self.code, "status": self.status}
        if self.escalation is not None:
            data["escalation"] = self.escalation
        if self.reason == "result_unrecorded":
            lead = f"agent-ledger withheld the result of {self.tool}, which ran upstream"
        else:
            lead = f"agent-ledger refused {self.tool}"
        return MCPError(LEDGER_REFUSED, f"{lead}: {self.message}", data)


@dataclass(frozen=True)
class Admission:
    """A call let through: its action and resource, the id pairing its
    call and result entries, the token forwarded with it (high-risk tools),
    and whether its call entry is on the record (not when `--fail-open`
    let it through an unreachable ledger)."""

    tool: str
    action: str
    resource: str
    call_id: str
    token: Optional[str] = field(default=None, repr=False)
    recorded: bool = True


class LedgerGuard:
    """The ledger's half of the proxy: admits each call (attestation and
    token for high-risk tools, then the signed call entry) and records its
    result.

    `connect` makes the native `Client`; it is called on first use and
    again after a failure, so the guard starts, and recovers, while the
    ledger is down. Native calls run on worker threads one at a time, so
    the agent's entries keep their sequence order under concurrent calls.
    """

    def __init__(
        self,
        connect: Callable[[], Client],
        high_risk: FrozenSet[str] = frozenset(),
        *,
        fail_open: bool = False,
        attest_every_s: Optional[float] = None,
        resource_args: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._connect = connect
        self.resource_args = dict(resource_args or {})
        self.high_risk = frozenset(high_risk)
        self.fail_open = fail_open
        self.attest_every_s = attest_every_s
        self._client: Optional[Client] = None
        self._attest_loop: Optional[AttestLoop] = None
        self._lock = anyio.Lock()

    async def connect(self) -> None:
        """Connects now (the first call would otherwise); a failure is only
        logged, and the next call tries again."""
        async with self._lock:
            try:
                await self._call(lambda client: None)
            except Exception as e:
                logger.warning("the ledger is not connected yet: %s", e)

    async def admit(self, tool: str, arguments: Mapping[str, Any]) -> Admission:
        """Authorizes (high-risk tools) and records a call before it is
        forwarded; raises `Refusal` if it must not be."""
        action = f"tool.{tool}"
        resource = default_resource(tool, arguments, self.resource_args.get(tool))
        call_id = uuid.uuid4().hex
        try:
            hidden = {INPUT_FIELD: {"str": sha256_hex(canonical_json(dict(arguments)))}}
        except (TypeError, ValueError) as e:
            raise Refusal(tool, "error", f"the arguments cannot be digested: {e}") from e
        data: Dict[str, Any] = {"phase": START, "call_id": call_id}
        token: Optional[str] = None
        async with self._lock:
            step = "connecting"
            try:
                if tool in self.high_risk:
                    step = "attesting"
                    await self._call(lambda client: client.attest())
                    step = f"the token for {action} on {resource}"
                    constraints = default_constraints(arguments)
                    grant = await self._call(lambda client: client.request_token(action, resource, constraints))
                    if "token" not in grant:
                        raise Refusal(
                            tool,
                            "escalation",
                            f"escalation: {action} on {resource} waits for a human: "
                            f"escalation {grant.get('escalation')} is {grant.get('status')}",
                            escalation=grant.get("escalation"),
                        )
                    token = grant["token"]
                    data["token_jti"] = grant.get("jti")
                step = "recording the call"
                await self._call(lambda client: client.append(action, resource, data=data, hidden=hidden))
            except Refusal:
                raise
            except UNREACHABLE as e:
                # A high-risk tool never runs without its token.
                if not self.fail_open or tool in self.high_risk:
                    raise Refusal.of(tool, step, e) from e
                logger.warning("fail-open: the ledger cannot be reached (%s: %s); forwarding %s unrecorded",
                               step, e, action)
                return Admission(tool, action, resource, call_id, token=None, recorded=False)
            except Exception as e:
                raise Refusal.of(tool, step, e) from e
        return Admission(tool, action, resource, call_id, token=token)

    async def record_result(self, admission: Admission, result: types.CallToolResult) -> None:
        """Records the upstream's result (its digest hidden); raises
        `Refusal` (`result_unrecorded`) if the ledger cannot, unless
        `--fail-open` and unreachable."""
        wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        await self._record_outcome(admission, END, canonical_json(wire), {"is_error": bool(result.is_error)})

    async def record_error(self, admission: Admission, error: types.ErrorData) -> None:
        """Records that the upstream answered with a JSON-RPC error (its
        code public, the error's digest hidden); never raises."""
        wire = error.model_dump(by_alias=True, mode="json", exclude_none=True)
        try:
            await self._record_outcome(admission, END, canonical_json(wire), {"is_error": True, "rpc_error": error.code})
        except Refusal as e:
            # The client gets the upstream's error; this one only goes to the log.
            logger.warning("could not record the error of %s: %s", admission.action, e.message)

    async def record_failure(self, admission: Admission, kind: str) -> None:
        """Records that the call ended without an answer (`kind`: the
        exception's type, or `cancelled`); never raises."""
        try:
            await self._record_outcome(admission, ERROR, None, {"error": kind})
        except Refusal as e:
            logger.warning("could not record the failure of %s: %s", admission.action, e.message)

    async def _record_outcome(
        self, admission: Admission, phase: str, digested: Optional[str], extra: Dict[str, Any]
    ) -> None:
        if not admission.recorded:
            logger.warning("fail-open: %s (call %s) was forwarded unrecorded", admission.action, admission.call_id)
            return
        data: Dict[str, Any] = {"phase": phase, "call_id": admission.call_id, **extra}
        hidden = {OUTPUT_FIELD: {"str": sha256_hex(digested)}} if digested is not None else None
        async with self._lock:
            try:
                await self._call(lambda client: client.append(admission.action, admission.resource, data=data,
                                                              hidden=hidden))
            except UNREACHABLE as e:
                if not self.fail_open:
                    raise Refusal.of(admission.tool, "recording the result", e, "result_unrecorded") from e
                logger.warning("fail-open: the ledger cannot be reached; the result of %s (call %s) is unrecorded: %s",
                               admission.action, admission.call_id, e)
            except Exception as e:
                raise Refusal.of(admission.tool, "recording the result", e, "result_unrecorded") from e

    async def _call(self, op: Callable[[Client], Any]) -> Any:
        """Runs `op` with the client on a worker thread (the caller holds
        the lock), connecting first if need be."""
        if self._client is None:
            client = await anyio.to_thread.run_sync(self._connect)
            self._client = client
            if self.attest_every_s is not None:
                self._attest_loop = client.attest_every(self.attest_every_s, on_error=_log_attestation_failure)
        client = self._client
        return await anyio.to_thread.run_sync(lambda: op(client))

    def close(self) -> None:
        """Stops the attestation loop, if any (idempotent)."""
        loop, self._attest_loop = self._attest_loop, None
        if loop is not None:
            loop.stop()


def _log_attestation_failure(error: Exception) -> None:
    # The loop keeps going; a high-risk call still attests on its own.
    logger.warning("periodic attestation failed: %s", error)


def build_proxy(upstream: ClientSession, guard: LedgerGuard, *, instructions: Optional[str] = None) -> Server:
    """The downstream MCP server: `tools/list` forwarded, each `tools/call`
    admitted and recorded by `guard` around its forwarding to `upstream`."""
    # The last listing's input schemas, for the 2026-07-28 HTTP transport's
    # header checks (which would otherwise list the upstream on every call).
    schemas: Dict[str, Dict[str, Any]] = {}

    async def list_tools(ctx: Any, params: Optional[types.PaginatedRequestParams]) -> types.ListToolsResult:
        # Only the cursor: the client's `_meta` speaks for its own session.
        cursor = params.cursor if params is not None else None
        result = await upstream.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        schemas.update({tool.name: tool.input_schema for tool in result.tools})
        return result

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        # Only tools the upstream lists: a name is logged, so a made-up one
        # (a model's, a prompt injection's) must not reach the log.
        cursor: Optional[str] = None
        for _ in range(MAX_LIST_PAGES):
            if params.name in schemas:
                break
            page = await list_tools(ctx, types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            cursor = page.next_cursor
            if not cursor:
                break
        if params.name not in schemas:
            refusal = Refusal(params.name[:64], "unknown_tool", "the upstream lists no tool of that name")
            raise refusal.to_mcp_error()
        return await forward_call(upstream, guard, params.name, params.arguments)

    return Server(
        PROGRAM,
        version=_version(),
        instructions=instructions,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def forward_call(
    upstream: ClientSession, guard: LedgerGuard, name: str, arguments: Optional[Dict[str, Any]]
) -> types.CallToolResult:
    """Admits the call, forwards it (with its token, if any) and records
    the outcome; a refusal raises the `MCPError` the client gets."""
    try:
        admission = await guard.admit(name, arguments or {})
    except Refusal as e:
        logger.warning("refused %s: %s", name, e.message)
        raise e.to_mcp_error() from e
    meta = {TOKEN_META_KEY: admission.token} if admission.token is not None else None
    try:
        result = await upstream.call_tool(name, arguments, meta=meta)  # type: ignore[arg-type]
    except MCPError as e:
        await guard.record_error(admission, e.error)
        raise
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await guard.record_failure(admission, "cancelled")
        raise
    except Exception as e:
        await guard.record_failure(admission, type(e).__name__)
        raise MCPError(types.INTERNAL_ERROR, f"the upstream call of {name} failed: {type(e).__name__}") from e
    try:
        await guard.record_result(admission, result)
    except Refusal as e:
        logger.warning("%s ran, but its result is withheld: %s", name, e.message)
        raise e.to_mcp_error() from e
    return result


@dataclass(frozen=True)
class GuardOptions:
    """The command line, parsed."""

    ledger: str
    agent: str
    key_file: str
    code_hash: Optional[str]
    high_risk: FrozenSet[str]
    fail_open: bool
    attest_every_s: Optional[float]
    upstream_command: Tuple[str, ...]
    upstream_url: Optional[str]
    listen: Optional[Tuple[str, int]]
    resource_args: Mapping[str, str] = field(default_factory=dict)


def parse_args(argv: Sequence[str]) -> GuardOptions:
    """Parses `[options] -- COMMAND ARGS...` or `[options] --upstream-url URL`;
    exits with a usage message (status 2) on a bad command line."""
    argv = list(argv)
    command: List[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        usage=f"{PROGRAM} [options] (-- COMMAND [ARGS...] | --upstream-url URL)",
        description="An MCP proxy that records every tool call as a signed entry of the agent in "
                    "Agent Ledger before forwarding it, and refuses calls the ledger refuses.",
    )
    parser.add_argument("--ledger", required=True, metavar="URL", help="the ledger server's base URL")
    parser.add_argument("--agent", required=True, metavar="SPIFFE_ID", help="the agent's registered id")
    parser.add_argument("--key-file", required=True, metavar="PATH", help="the agent's key file (mode 0600)")
    parser.add_argument("--code-hash", metavar="HEX",
                        help="hex SHA-256 of the agent's code, as in its passport (needed to attest)")
    parser.add_argument("--high-risk", action="append", default=[], metavar="TOOL",
                        help="a tool that needs a fresh attestation and an action token (repeatable)")
    parser.add_argument("--resource-arg", action="append", default=[], metavar="TOOL=ARG",
                        help="log TOOL's argument ARG (a str) as the call's resource, which is public; "
                             "default: mcp/TOOL (repeatable)")
    parser.add_argument("--fail-open", action="store_true",
                        help="forward calls other than --high-risk ones, with a warning, when no "
                             "connection to the ledger can be made (default: refuse them)")
    parser.add_argument("--attest-every", type=float, metavar="SECONDS", help="also attest on this period")
    parser.add_argument("--upstream-url", metavar="URL", help="the upstream MCP server (streamable HTTP)")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve streamable HTTP at http://HOST:PORT/mcp (default: stdio)")
    args = parser.parse_args(argv)
    if bool(command) == bool(args.upstream_url):
        parser.error("give the upstream server either as -- COMMAND [ARGS...] or as --upstream-url URL")
    if args.code_hash is not None and not re.fullmatch(r"[0-9a-f]{64}", args.code_hash.lower()):
        parser.error("--code-hash takes 64 hex digits (the SHA-256 in the agent's passport)")
    if args.high_risk and not args.code_hash:
        parser.error("--high-risk tools attest first: give --code-hash")
    if args.attest_every is not None and (not args.code_hash or not args.attest_every > 0):
        parser.error("--attest-every takes a positive number of seconds and needs --code-hash")
    resource_args: Dict[str, str] = {}
    for spec in args.resource_arg:
        tool, _, arg = spec.partition("=")
        if not tool or not arg:
            parser.error(f"--resource-arg {spec!r}: expected TOOL=ARG")
        resource_args[tool] = arg
    listen = None
    if args.listen is not None:
        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"--listen {args.listen!r}: expected HOST:PORT")
        listen = (host.strip("[]"), int(port))
        # Whoever reaches the port acts as the agent: loopback only.
        if listen[0] not in ("127.0.0.1", "::1", "localhost"):
            parser.error(f"--listen {args.listen!r}: the guard serves loopback only (127.0.0.1, ::1, localhost)")
    return GuardOptions(
        ledger=args.ledger,
        agent=args.agent,
        key_file=args.key_file,
        code_hash=args.code_hash.lower() if args.code_hash is not None else None,
        high_risk=frozenset(args.high_risk),
        fail_open=args.fail_open,
        attest_every_s=args.attest_every,
        upstream_command=tuple(command),
        upstream_url=args.upstream_url,
        listen=listen,
        resource_args=resource_args,
    )


@asynccontextmanager
async def open_upstream(options: GuardOptions) -> AsyncIterator[Tuple[ClientSession, types.InitializeResult]]:
    """A session with the upstream server, initialized: the command as a
    child process (with the guard's environment), or the URL."""
    if options.upstream_url is not None:
        transport = streamable_http_client(options.upstream_url)
    else:
        command, *args = options.upstream_command
        transport = stdio_client(StdioServerParameters(command=command, args=args, env=dict(os.environ)))
    async with transport as (read_stream, write_stream):
        info = types.Implementation(name=PROGRAM, version=_version())
        async with ClientSession(read_stream, write_stream, client_info=info) as session:
            with anyio.fail_after(UPSTREAM_START_TIMEOUT_S):
                initialized = await session.initialize()
            yield session, initialized


async def run_proxy(options: GuardOptions) -> None:
    """Connects upstream, then serves downstream until the client leaves
    (stdio), or until SIGINT or SIGTERM."""
    guard = LedgerGuard(
        lambda: Client(options.ledger, options.agent, options.key_file, code_hash=options.code_hash),
        options.high_risk,
        fail_open=options.fail_open,
        attest_every_s=options.attest_every_s,
        resource_args=options.resource_args,
    )
    try:
        async with open_upstream(options) as (upstream, initialized):
            server = build_proxy(upstream, guard, instructions=initialized.instructions)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(guard.connect)
                if options.listen is None:
                    async with stdio_server() as (read_stream, write_stream):
                        await server.run(read_stream, write_stream, server.create_initialization_options())
                else:
                    await _serve_http(server, *options.listen)
                tasks.cancel_scope.cancel()
    finally:
        guard.close()


async def _serve_http(server: Server, host: str, port: int) -> None:
    """Serves until SIGINT or SIGTERM, which uvicorn turns into a graceful
    shutdown (and then raises again, into the no-op handlers set here, so
    that the upstream is still closed in order)."""
    import uvicorn

    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        await uvicorn.Server(config).serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_signal(signum: int, frame: Any) -> None:
    pass


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("agent-ledger")
    except Exception:
        return "0"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `agent-ledger-mcp-guard` command; returns its exit status."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format=f"{PROGRAM}: %(levelname)s: %(message)s")
    try:
        # Fails fast on a missing or unsafe key file; the ledger may be down.
        Key.load(options.key_file)
    except (LedgerError, OSError) as e:
        print(f"{PROGRAM}: {options.key_file}: {e}", file=sys.stderr)
        return 2
    try:
        anyio.run(run_proxy, options)
    except KeyboardInterrupt:
        pass
    except Exception as e:
        logger.error("stopped: %s", "; ".join(f"{type(c).__name__}: {c}" for c in _leaves(e)))
        return 1
    return 0


def _leaves(error: BaseException) -> List[BaseException]:
    """The exceptions in `error`, exception groups (task groups) flattened."""
    nested = getattr(error, "exceptions", None)
    if not isinstance(nested, tuple):
        return [error]
    return [leaf for inner in nested for leaf in _leaves(inner)]


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes ledger-py/python/agent_ledger/errors.py from the Rust list of
error codes (the `error_codes!` block of verifier/src/wire.rs): one exception
class per code, under one class per HTTP status.

    python3 scripts/python_errors.py

The Python tests check that every code the native module knows has its class.
"""

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "ledger-py/python/agent_ledger/errors.py"

STATUS = {
    400: ("BadRequestError", "400: the request was malformed or out of range."),
    401: ("UnauthorizedError", "401: the request was not authenticated (admin token, agent signature)."),
    403: ("ForbiddenError", "403: authenticated, but not allowed (revoked, retired, unknown agent, policy)."),
    404: ("NotFoundError", "404: nothing at that index, id or path."),
    405: ("MethodNotAllowedError", "405: the method is not allowed on that path."),
    408: ("RequestTimeoutError", "408: the request body arrived too slowly."),
    409: ("ConflictError", "409: refused because of the state of the log (replays, decisions already taken)."),
    410: ("GoneError", "410: the data is gone for good (crypto-shredded openings)."),
    413: ("PayloadTooLargeError", "413: the request is larger than the server takes."),
    415: ("UnsupportedMediaTypeError", "415: the content type is not one the path takes."),
    422: ("UnprocessableError", "422: well-formed but false or failing (a predicate, an attestation verdict)."),
    426: ("UpgradeRequiredError", "426: the path needs another protocol."),
    429: ("TooManyRequestsError", "429: too many at once; try again later."),
    500: ("ServerError", "500: the server failed."),
    503: ("ServiceUnavailableError", "503: the server is overloaded or not ready."),
}

HEAD = '''"""Exceptions raised by the Agent Ledger SDK.

Every error the server answers with is an `ApiError` carrying its HTTP
`status`, its stable `code` (docs/FORMAT.md; `verifier::wire::ErrorCode` in
Rust) and `message`; each code has its own class (``AgentRevokedError`` for
``agent_revoked``), under a class per status (``ForbiddenError`` for 403),
so callers catch as narrowly as they like. Codes newer than this package
are the class of their status, with the code as sent.

Generated from the Rust list of codes by scripts/python_errors.py: do not
edit by hand. A test checks that no code is missing.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class LedgerError(Exception):
    """Base of every error of this package."""

    code: Optional[str] = None
    status: Optional[int] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(LedgerError):
    """The server answered with an error: `status`, `code`, `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class LedgerUnavailable(LedgerError):
    """Nothing accepted the connection on any attempt (server down); nothing was sent."""


class LedgerBusy(LedgerError):
    """The server still answered 503 after every retry."""


class TransportError(LedgerError):
    """No answer, or one that could not be read or trusted (connection lost, timeout)."""


class KeyFileError(LedgerError):
    """The key file could not be read, written or trusted (permissions)."""


class VerificationError(LedgerError):
    """Offline verification failed: the proof, bundle, checkpoint or statement does not hold."""


class TpmError(LedgerError):
    """The TPM failed."""
'''

TAIL = '''

def api_error(status: int, code: str, message: str) -> ApiError:
    """The exception for an error answer (called by the native module)."""
    cls = BY_CODE.get(code) or BY_STATUS.get(status, ApiError)
    return cls(status, code, message)
'''


def codes():
    wire = (ROOT / "verifier/src/wire.rs").read_text()
    start = wire.index("error_codes! {")
    body = wire[start : wire.index("\n}\n", start)]
    for doc, variant, text in re.findall(r'((?:[ \t]*///[^\n]*\n)*)[ \t]*([A-Z][A-Za-z0-9]+) = "([a-z_0-9]+)",', body):
        doc = " ".join(line.strip()[3:].strip() for line in doc.strip().splitlines())
        status = int(re.match(r"(\d{3})", doc).group(1))
        yield variant, text, doc, status


def main():
    out = [HEAD]
    all_codes = list(codes())
    # A code named like its status (payload_too_large, 413) is that
    # status's class itself, not a second class of the same name.
    merged = {status: text for variant, text, _, status in all_codes if f"{variant}Error" == STATUS[status][0]}
    for status, (name, doc) in sorted(STATUS.items()):
        code = f'\n    code = "{merged[status]}"\n' if status in merged else ""
        out.append(f'\n\nclass {name}(ApiError):\n    """{doc}"""\n{code}')
    for variant, text, doc, status in all_codes:
        if merged.get(status) == text:
            continue
        doc = textwrap.fill(doc.replace("\\", "\\\\").replace('"""', "'''"), 84, subsequent_indent="    ", break_on_hyphens=False)
        out.append(f'\n\nclass {variant}Error({STATUS[status][0]}):\n    """{doc}"""\n\n    code = "{text}"\n')
    out.append("\n\n#: The class of each server error code.\nBY_CODE: Dict[str, Type[ApiError]] = {\n")
    out.extend(f'    "{text}": {variant}Error,\n' for variant, text, _, _ in all_codes)
    out.append("}\n\n#: The class of each HTTP status, for codes newer than this package.\nBY_STATUS: Dict[int, Type[ApiError]] = {\n")
    out.extend(f"    {status}: {name},\n" for status, (name, _) in sorted(STATUS.items()))
    out.append("}\n")
    out.append(TAIL)
    OUT.write_text("".join(out))


if __name__ == "__main__":
    main()

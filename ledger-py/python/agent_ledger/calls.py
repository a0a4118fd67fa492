"""What the LangChain handler and the MCP guard record about a tool call,
in one place: the digests that go in hidden fields, the resource a call
acts on, and the parameters its action token pins."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping

#: The phase of each entry of a tool call (`data.phase`): before it runs,
#: after it answered, after it failed without an answer. Each also carries
#: the call's `call_id`, which pairs them.
START, END, ERROR = "start", "end", "error"

#: The hidden fields holding the digests of a call's input and its output.
INPUT_FIELD, OUTPUT_FIELD = "input_sha256", "output_sha256"


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 of `text`, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted, compact JSON, so whoever holds the same value gets the same
    digest; values JSON lacks are written as their `str`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def resource_of(arguments: Any, member: str, fallback: str) -> str:
    """The arguments' `member` when it is a non-empty str, else `fallback`.

    The resource of an entry is public forever: only an argument the
    operator names is ever used (a path or URL may be a secret)."""
    if isinstance(arguments, Mapping):
        value = arguments.get(member)
        if isinstance(value, str) and value:
            return value
    return fallback


def sql_constraints(arguments: Any) -> Dict[str, Any]:
    """Pins the arguments' `sql` statement, if any, by its SHA-256.

    The log keeps only the digest either way (docs/POLICY.md); sending the
    digest rather than the text keeps the text from the log too.
    """
    if isinstance(arguments, Mapping) and isinstance(arguments.get("sql"), str):
        return {"sql_sha256": sha256_hex(arguments["sql"])}
    return {}

"""Agent Ledger for Python agents.

The signing, canonical JSON, commitments and proofs are the Rust SDK's own
(`ledger-client`, `verifier`), compiled into this package: an entry signed
here is byte for byte the one the Rust SDK signs.

    from agent_ledger import Client, Key

    client = Client("http://127.0.0.1:8080", "spiffe://example.org/agent/billing",
                    "billing.key", code_hash="c0" * 32)
    client.attest()
    receipt = client.append("pay", "invoices/7", data={"currency": "EUR"},
                            hidden={"amount": 1250, "customer": "ACME"})
    print(receipt.index, client.trust()["score"])

Errors are exceptions of `agent_ledger.errors`, each carrying the server's
stable error code. `agent_ledger.langchain` has a LangChain callback handler,
`agent_ledger.mcp_guard` an MCP proxy that logs and guards every tool call.
"""

from . import errors
from ._native import (
    AttestLoop,
    Client,
    EventStream,
    Key,
    Receipt,
    error_codes,
    register,
    seal_entry,
    verify_checkpoint,
    verify_disclosure,
    verify_peer,
    verify_proof_file,
)
from .errors import ApiError, LedgerError, LedgerUnavailable, VerificationError

__all__ = [
    "ApiError",
    "AttestLoop",
    "Client",
    "EventStream",
    "Key",
    "LedgerError",
    "LedgerUnavailable",
    "Receipt",
    "VerificationError",
    "error_codes",
    "errors",
    "register",
    "seal_entry",
    "verify_checkpoint",
    "verify_disclosure",
    "verify_peer",
    "verify_proof_file",
]

"""Type hints for the native module (Rust: ledger-client and verifier)."""

import os
from typing import Any, Callable, Iterator, Optional, Union

_Path = Union[str, "os.PathLike[str]"]

class Key:
    """An agent's Ed25519 signing key. Never printed; saved with mode 0600."""

    @staticmethod
    def generate() -> "Key": ...
    @staticmethod
    def from_seed(seed: bytes) -> "Key":
        """The key whose 32-byte secret is `seed` (test vectors)."""
    @staticmethod
    def load(path: _Path) -> "Key":
        """Reads a key file; refuses one readable by group or others."""
    @staticmethod
    def load_or_create(path: _Path) -> "Key":
        """Reads the key file, or creates it (0600) with a new key."""
    def save(self, path: _Path, *, overwrite: bool = False) -> None:
        """Writes the key (0600, written whole then renamed)."""
    @property
    def public_key(self) -> str:
        """The public key, base64 (a passport's `public_key`)."""

class Receipt:
    """Where an entry landed."""

    @property
    def index(self) -> int: ...
    @property
    def response(self) -> dict[str, Any]: ...

class AttestLoop:
    """A running `Client.attest_every`; stops when stopped, closed or collected."""

    def stop(self) -> None: ...
    def __enter__(self) -> "AttestLoop": ...
    def __exit__(self, *exc: object) -> None: ...

class EventStream(Iterator[dict[str, Any]]):
    """The log's events, resuming by itself after a lost connection."""

    def __iter__(self) -> "EventStream": ...
    def __next__(self) -> dict[str, Any]:
        """The next event: `index`, `type`, `agent`, `integrated_time`, `entry`."""
    @property
    def resume_after(self) -> Optional[int]: ...

class Client:
    """An agent's connection to the ledger: every entry signed with its key
    and the next sequence number (resumed from the log)."""

    def __init__(
        self,
        url: str,
        agent_id: str,
        key: Union[Key, _Path],
        *,
        code_hash: Optional[str] = None,
        model_hash: Optional[str] = None,
        image_digest: Optional[str] = None,
        retry_attempts: int = 8,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
    ) -> None: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    def append(
        self,
        action: str,
        resource: str,
        data: Optional[Any] = None,
        hidden: Optional[dict[str, Any]] = None,
    ) -> Receipt:
        """Records an action; `hidden` values (int, str, or the SDK's
        `{"u64": n, "prove": [...]}`) are committed here before signing."""
    def append_entry(self, entry: dict[str, Any]) -> Receipt: ...
    def append_batch(self, entries: list[dict[str, Any]]) -> list[Receipt]: ...
    def attest(self) -> Receipt: ...
    def attest_every(self, seconds: float, on_error: Optional[Callable[[Exception], None]] = None) -> AttestLoop: ...
    def rotate(self, new_key: Optional[Key] = None) -> Receipt:
        """Rotates the key; with a key file the new key replaces it once the
        log has recorded the rotation (`<file>.next` meanwhile). A client
        made from a `Key` must be given `new_key`."""
    def trust(self, agent_id: Optional[str] = None) -> dict[str, Any]: ...
    def events(
        self,
        types: Optional[list[str]] = None,
        agent: Optional[str] = None,
        trust_domain: Optional[str] = None,
        after: Optional[int] = None,
        from_first: bool = False,
    ) -> EventStream: ...
    def request_token(
        self,
        action: str,
        resource: str,
        constraints: Optional[Any] = None,
        lifetime_s: Optional[int] = None,
    ) -> dict[str, Any]: ...
    def wait_for_escalation(self, escalation: int, every_s: float = 1.0, timeout_s: float = 60.0) -> dict[str, Any]: ...
    def disclose(self, index: int, request: dict[str, Any]) -> dict[str, Any]: ...
    def statement(self, agent_id: Optional[str] = None) -> str: ...

def register(url: str, admin_token: str, passport: dict[str, Any]) -> Receipt: ...
def seal_entry(key: Key, origin: str, agent_id: str, seq: int, entry: dict[str, Any], seed: bytes) -> dict[str, Any]: ...
def verify_checkpoint(key: str, checkpoint: Union[str, bytes]) -> dict[str, Any]: ...
def verify_proof_file(key: str, proof: Union[_Path, bytes], entry: Optional[bytes] = None) -> dict[str, Any]: ...
def verify_disclosure(key: str, bundle: Union[_Path, bytes, dict[str, Any]]) -> dict[str, Any]: ...
def verify_peer(
    statement: str, peer: str, *, token_key: str, log_key: str, min_score: int, max_age_s: float
) -> dict[str, Any]: ...
def error_codes() -> list[str]: ...

"""Exceptions raised by the Agent Ledger SDK.

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


class BadRequestError(ApiError):
    """400: the request was malformed or out of range."""


class UnauthorizedError(ApiError):
    """401: the request was not authenticated (admin token, agent signature)."""

    code = "unauthorized"


class ForbiddenError(ApiError):
    """403: authenticated, but not allowed (revoked, retired, unknown agent, policy)."""


class NotFoundError(ApiError):
    """404: nothing at that index, id or path."""

    code = "not_found"


class MethodNotAllowedError(ApiError):
    """405: the method is not allowed on that path."""

    code = "method_not_allowed"


class RequestTimeoutError(ApiError):
    """408: the request body arrived too slowly."""

    code = "request_timeout"


class ConflictError(ApiError):
    """409: refused because of the state of the log (replays, decisions already taken)."""


class GoneError(ApiError):
    """410: the data is gone for good (crypto-shredded openings)."""


class PayloadTooLargeError(ApiError):
    """413: the request is larger than the server takes."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    """415: the content type is not one the path takes."""

    code = "unsupported_media_type"


class UnprocessableError(ApiError):
    """422: well-formed but false or failing (a predicate, an attestation verdict)."""


class UpgradeRequiredError(ApiError):
    """426: the path needs another protocol."""

    code = "upgrade_required"


class TooManyRequestsError(ApiError):
    """429: too many at once; try again later."""

    code = "too_many_requests"


class ServerError(ApiError):
    """500: the server failed."""


class ServiceUnavailableError(ApiError):
    """503: the server is overloaded or not ready."""


class InvalidJsonError(BadRequestError):
    """400: the body (or a batch) is not valid strict JSON (also duplicate keys,
    non-integer numbers)."""

    code = "invalid_json"


class InvalidEntryError(BadRequestError):
    """400: an entry of the wrong shape."""

    code = "invalid_entry"


class UnknownKindError(BadRequestError):
    """400: an entry kind `POST /v1/entries` does not take."""

    code = "unknown_kind"


class InvalidAgentIdError(BadRequestError):
    """400: not a SPIFFE agent id."""

    code = "invalid_agent_id"


class InvalidHiddenError(BadRequestError):
    """400: malformed hidden fields, commitments, openings or commit request."""

    code = "invalid_hidden"


class CommitHiddenFirstError(BadRequestError):
    """400: hidden values in the clear with an entry (commit them first)."""

    code = "commit_hidden_first"


class InvalidPredicateError(BadRequestError):
    """400: a malformed predicate or predicate proof."""

    code = "invalid_predicate"


class InvalidPassportError(BadRequestError):
    """400: a malformed passport."""

    code = "invalid_passport"


class WrongTrustDomainError(BadRequestError):
    """400: an agent outside the log's trust domain."""

    code = "wrong_trust_domain"


class InvalidRetirementError(BadRequestError):
    """400: a retirement without a valid reason."""

    code = "invalid_retirement"


class InvalidSourceError(BadRequestError):
    """400: a malformed signal source registration (name, key, types)."""

    code = "invalid_source"


class InvalidSignalError(BadRequestError):
    """400: a malformed signal (members, subject, signer and type that do not fit)."""

    code = "invalid_signal"


class InvalidDisclosureError(BadRequestError):
    """400: a malformed disclosure request."""

    code = "invalid_disclosure"


class UnknownFieldError(BadRequestError):
    """400: a disclosure names a field the entry does not hide."""

    code = "unknown_field"


class NotAnIntegerError(BadRequestError):
    """400: a predicate about a hidden field that is not an integer."""

    code = "not_an_integer"


class InvalidBatchError(BadRequestError):
    """400: a batch body that is not a JSON array."""

    code = "invalid_batch"


class EmptyBatchError(BadRequestError):
    """400: a batch with no entries."""

    code = "empty_batch"


class InvalidQueryError(BadRequestError):
    """400: an invalid query string."""

    code = "invalid_query"


class InvalidIndexError(BadRequestError):
    """400: a path index that is not a non-negative decimal integer."""

    code = "invalid_index"


class InvalidTilePathError(BadRequestError):
    """400: a malformed tile path."""

    code = "invalid_tile_path"


class OldSizeLargerError(BadRequestError):
    """400: a consistency proof asked from a larger to a smaller tree."""

    code = "old_size_larger"


class InvalidExportRangeError(BadRequestError):
    """400: an export range outside the checkpoint's tree."""

    code = "invalid_export_range"


class NotWitnessedError(ServiceUnavailableError):
    """503: witnesses are configured and no checkpoint has reached their quorum yet."""

    code = "not_witnessed"


class InvalidPolicyError(BadRequestError):
    """400: not a valid trust policy (TOML or JSON)."""

    code = "invalid_policy"


class BodyReadFailedError(BadRequestError):
    """400: the request body could not be read."""

    code = "body_read_failed"


class InvalidStreamError(BadRequestError):
    """400: a malformed SSF stream configuration or management request, or a
    Transmitter-supplied member that does not match (OpenID SSF 1.0 §8.1)."""

    code = "invalid_stream"


class InvalidStreamStatusError(BadRequestError):
    """400: an SSF stream status other than `enabled`, `paused`, `disabled`."""

    code = "invalid_stream_status"


class InvalidSubjectError(BadRequestError):
    """400: an SSF subject that is not a `uri` subject naming an agent of the trust domain."""

    code = "invalid_subject"


class InvalidPollError(BadRequestError):
    """400: a malformed RFC 8936 poll request, or a poll of a push stream."""

    code = "invalid_poll"


class InvalidTokenRequestError(BadRequestError):
    """400: a malformed token request (action, resource, constraints, lifetime)."""

    code = "invalid_token_request"


class InvalidTokenCheckError(BadRequestError):
    """400: a token verification request without a token or an operation."""

    code = "invalid_token_check"


class SignatureRequiredError(UnauthorizedError):
    """401: an agent entry or a commit request without a signature."""

    code = "signature_required"


class BadSignatureError(UnauthorizedError):
    """401: a signature that does not verify with the agent's key in force."""

    code = "bad_signature"


class StaleRequestError(UnauthorizedError):
    """401: a signed request's timestamp too far from the server's clock."""

    code = "stale_request"


class AdminDisabledError(ForbiddenError):
    """403: the server has no admin token, so admin routes are disabled."""

    code = "admin_disabled"


class UnknownAgentError(ForbiddenError):
    """403 (404 on `GET /v1/agents/{id}`): no passport is registered for the agent."""

    code = "unknown_agent"


class AgentRetiredError(ForbiddenError):
    """403: the agent is retired."""

    code = "agent_retired"


class AgentRevokedError(ForbiddenError):
    """403: the agent is revoked; only its attestations are taken until an admin reinstates
    it."""

    code = "agent_revoked"


class AttestationRequiredError(ForbiddenError):
    """403: a revoked agent without a successful attestation since its revocation cannot be
    reinstated."""

    code = "attestation_required"


class NotOwnerError(ForbiddenError):
    """403: the signing agent is not the one the request is about."""

    code = "not_owner"


class UnknownSourceError(ForbiddenError):
    """403: a signal names a source that is not registered."""

    code = "unknown_source"


class SignalTypeNotAllowedError(ForbiddenError):
    """403: a signal of a type its source was not registered for."""

    code = "signal_type_not_allowed"


class ScoreTooLowError(ForbiddenError):
    """403: the agent's trust score is below the minimum of the action's risk class
    (`details`: score, required, class, what would raise it)."""

    code = "score_too_low"


class TokenMalformedError(ForbiddenError):
    """403: an action token is refused: not a token of this log's shape."""

    code = "token_malformed"


class TokenTooLongError(ForbiddenError):
    """403: an action token longer than the limit."""

    code = "token_too_long"


class TokenBadSignatureError(ForbiddenError):
    """403: an action token whose signature does not verify."""

    code = "token_bad_signature"


class TokenWrongIssuerError(ForbiddenError):
    """403: an action token issued by another log."""

    code = "token_wrong_issuer"


class TokenExpiredError(ForbiddenError):
    """403: an action token past its `exp` (plus the leeway)."""

    code = "token_expired"


class TokenNotYetValidError(ForbiddenError):
    """403: an action token before its `nbf` (minus the leeway)."""

    code = "token_not_yet_valid"


class TokenWrongAudienceError(ForbiddenError):
    """403: an action token for another resource."""

    code = "token_wrong_audience"


class TokenWrongActionError(ForbiddenError):
    """403: an action token for another action."""

    code = "token_wrong_action"


class TokenSqlMismatchError(ForbiddenError):
    """403: a statement other than the one the token pins."""

    code = "token_sql_mismatch"


class TokenAmountOverCeilingError(ForbiddenError):
    """403: an amount above the token's ceiling."""

    code = "token_amount_over_ceiling"


class TokenTargetMismatchError(ForbiddenError):
    """403: a target other than the one the token pins."""

    code = "token_target_mismatch"


class TokenRevokedError(ForbiddenError):
    """403: a revoked action token."""

    code = "token_revoked"


class TokenReplayedError(ConflictError):
    """409: a single-use action token presented again."""

    code = "token_replayed"


class InsufficientScopeError(ForbiddenError):
    """403: the SSF bearer token lacks the scope the endpoint needs (`WWW-Authenticate:
    Bearer error="insufficient_scope"`)."""

    code = "insufficient_scope"


class IndexBeyondTreeError(NotFoundError):
    """404: an index beyond the tree."""

    code = "index_beyond_tree"


class SizeBeyondTreeError(NotFoundError):
    """404: a tree size beyond the tree."""

    code = "size_beyond_tree"


class TileNotAvailableError(NotFoundError):
    """404: a tile not (yet) in the tree."""

    code = "tile_not_available"


class NoHiddenFieldsError(NotFoundError):
    """404: the entry has no hidden fields."""

    code = "no_hidden_fields"


class NoOpeningsError(NotFoundError):
    """404: the entry has no openings."""

    code = "no_openings"


class UnknownStreamError(NotFoundError):
    """404: no SSF stream with this id for this receiver."""

    code = "unknown_stream"


class UnknownEscalationError(NotFoundError):
    """404: no escalation with this id."""

    code = "unknown_escalation"


class TokensDisabledError(NotFoundError):
    """404: this server issues no action tokens."""

    code = "tokens_disabled"


class AgentExistsError(ConflictError):
    """409: the agent is already registered."""

    code = "agent_exists"


class SequenceReplayedError(ConflictError):
    """409: a sequence number not above the agent's (or the signal source's) last one."""

    code = "sequence_replayed"


class NonceUnknownError(ConflictError):
    """409: an attestation nonce the log never issued (or dropped)."""

    code = "nonce_unknown"


class NonceExpiredError(ConflictError):
    """409: an expired attestation nonce."""

    code = "nonce_expired"


class NonceUsedError(ConflictError):
    """409: an attestation nonce already used."""

    code = "nonce_used"


class NonceWrongAgentError(ConflictError):
    """409: another agent's attestation nonce."""

    code = "nonce_wrong_agent"


class RequestReplayedError(ConflictError):
    """409: a signed request seen before."""

    code = "request_replayed"


class AlreadyRevokedError(ConflictError):
    """409: a quarantine of an agent already revoked."""

    code = "already_revoked"


class NotRevokedError(ConflictError):
    """409: a reinstatement of an agent that is not revoked."""

    code = "not_revoked"


class TooManyStreamsError(ConflictError):
    """409: the receiver has as many SSF streams as it may."""

    code = "too_many_streams"


class TooManySubjectsError(ConflictError):
    """409: the SSF stream names as many subjects as it may."""

    code = "too_many_subjects"


class AlreadyDecidedError(ConflictError):
    """409: the escalation is already decided (or being decided)."""

    code = "already_decided"


class OpeningsShreddedError(GoneError):
    """410: the openings a disclosure needs were crypto-shredded."""

    code = "openings_shredded"


class EntryTooLargeError(PayloadTooLargeError):
    """413: an entry (or a batch element) over the entry limit."""

    code = "entry_too_large"


class BatchTooLargeError(PayloadTooLargeError):
    """413: a batch over the entry count or queue limit."""

    code = "batch_too_large"


class TooManyHiddenEntriesError(PayloadTooLargeError):
    """413: too many hidden fields in one entry."""

    code = "too_many_hidden_entries"


class PredicateFalseError(UnprocessableError):
    """422: a declared or requested predicate does not hold."""

    code = "predicate_false"


class AttestationFailedError(UnprocessableError):
    """422: an attestation recorded with a failing verdict."""

    code = "attestation_failed"


class TooManyTokensError(TooManyRequestsError):
    """429: the agent holds as many live action tokens (64) or pending escalations (16) as
    it may."""

    code = "too_many_tokens"


class InternalError(ServerError):
    """500: the server failed (details only in its log)."""

    code = "internal"


class PushbackError(ServiceUnavailableError):
    """503: the sequencer queue is full."""

    code = "pushback"


class ProverBusyError(ServiceUnavailableError):
    """503: the prover queue is full."""

    code = "prover_busy"


class ShuttingDownError(ServiceUnavailableError):
    """503: the server is shutting down."""

    code = "shutting_down"


class ReplayCacheFullError(ServiceUnavailableError):
    """503: the replay cache of signed requests is full."""

    code = "replay_cache_full"


class TokenReplayCacheFullError(ServiceUnavailableError):
    """503: the log's cache of single-use action tokens is full."""

    code = "token_replay_cache_full"


class TokenRevocationsUnknownError(ServiceUnavailableError):
    """503: a resource's feed of revocations is down, so it takes no token (an SDK
    verifier's code; the log itself never answers it)."""

    code = "token_revocations_unknown"


class NonceStoreFullError(ServiceUnavailableError):
    """503: the nonce store is full of live nonces."""

    code = "nonce_store_full"


class TooManyConnectionsError(ServiceUnavailableError):
    """503: the server serves its maximum of connections (from the connection layer)."""

    code = "too_many_connections"


class TooManySubscribersError(ServiceUnavailableError):
    """503: the server serves its maximum of event subscribers."""

    code = "too_many_subscribers"


#: The class of each server error code.
BY_CODE: Dict[str, Type[ApiError]] = {
    "invalid_json": InvalidJsonError,
    "invalid_entry": InvalidEntryError,
    "unknown_kind": UnknownKindError,
    "invalid_agent_id": InvalidAgentIdError,
    "invalid_hidden": InvalidHiddenError,
    "commit_hidden_first": CommitHiddenFirstError,
    "invalid_predicate": InvalidPredicateError,
    "invalid_passport": InvalidPassportError,
    "wrong_trust_domain": WrongTrustDomainError,
    "invalid_retirement": InvalidRetirementError,
    "invalid_source": InvalidSourceError,
    "invalid_signal": InvalidSignalError,
    "invalid_disclosure": InvalidDisclosureError,
    "unknown_field": UnknownFieldError,
    "not_an_integer": NotAnIntegerError,
    "invalid_batch": InvalidBatchError,
    "empty_batch": EmptyBatchError,
    "invalid_query": InvalidQueryError,
    "invalid_index": InvalidIndexError,
    "invalid_tile_path": InvalidTilePathError,
    "old_size_larger": OldSizeLargerError,
    "invalid_export_range": InvalidExportRangeError,
    "not_witnessed": NotWitnessedError,
    "invalid_policy": InvalidPolicyError,
    "body_read_failed": BodyReadFailedError,
    "invalid_stream": InvalidStreamError,
    "invalid_stream_status": InvalidStreamStatusError,
    "invalid_subject": InvalidSubjectError,
    "invalid_poll": InvalidPollError,
    "invalid_token_request": InvalidTokenRequestError,
    "invalid_token_check": InvalidTokenCheckError,
    "unauthorized": UnauthorizedError,
    "signature_required": SignatureRequiredError,
    "bad_signature": BadSignatureError,
    "stale_request": StaleRequestError,
    "admin_disabled": AdminDisabledError,
    "unknown_agent": UnknownAgentError,
    "agent_retired": AgentRetiredError,
    "agent_revoked": AgentRevokedError,
    "attestation_required": AttestationRequiredError,
    "not_owner": NotOwnerError,
    "unknown_source": UnknownSourceError,
    "signal_type_not_allowed": SignalTypeNotAllowedError,
    "score_too_low": ScoreTooLowError,
    "token_malformed": TokenMalformedError,
    "token_too_long": TokenTooLongError,
    "token_bad_signature": TokenBadSignatureError,
    "token_wrong_issuer": TokenWrongIssuerError,
    "token_expired": TokenExpiredError,
    "token_not_yet_valid": TokenNotYetValidError,
    "token_wrong_audience": TokenWrongAudienceError,
    "token_wrong_action": TokenWrongActionError,
    "token_sql_mismatch": TokenSqlMismatchError,
    "token_amount_over_ceiling": TokenAmountOverCeilingError,
    "token_target_mismatch": TokenTargetMismatchError,
    "token_revoked": TokenRevokedError,
    "token_replayed": TokenReplayedError,
    "insufficient_scope": InsufficientScopeError,
    "not_found": NotFoundError,
    "index_beyond_tree": IndexBeyondTreeError,
    "size_beyond_tree": SizeBeyondTreeError,
    "tile_not_available": TileNotAvailableError,
    "no_hidden_fields": NoHiddenFieldsError,
    "no_openings": NoOpeningsError,
    "unknown_stream": UnknownStreamError,
    "unknown_escalation": UnknownEscalationError,
    "tokens_disabled": TokensDisabledError,
    "method_not_allowed": MethodNotAllowedError,
    "request_timeout": RequestTimeoutError,
    "agent_exists": AgentExistsError,
    "sequence_replayed": SequenceReplayedError,
    "nonce_unknown": NonceUnknownError,
    "nonce_expired": NonceExpiredError,
    "nonce_used": NonceUsedError,
    "nonce_wrong_agent": NonceWrongAgentError,
    "request_replayed": RequestReplayedError,
    "already_revoked": AlreadyRevokedError,
    "not_revoked": NotRevokedError,
    "too_many_streams": TooManyStreamsError,
    "too_many_subjects": TooManySubjectsError,
    "already_decided": AlreadyDecidedError,
    "openings_shredded": OpeningsShreddedError,
    "payload_too_large": PayloadTooLargeError,
    "entry_too_large": EntryTooLargeError,
    "batch_too_large": BatchTooLargeError,
    "too_many_hidden_entries": TooManyHiddenEntriesError,
    "unsupported_media_type": UnsupportedMediaTypeError,
    "upgrade_required": UpgradeRequiredError,
    "predicate_false": PredicateFalseError,
    "attestation_failed": AttestationFailedError,
    "too_many_requests": TooManyRequestsError,
    "too_many_tokens": TooManyTokensError,
    "internal": InternalError,
    "pushback": PushbackError,
    "prover_busy": ProverBusyError,
    "shutting_down": ShuttingDownError,
    "replay_cache_full": ReplayCacheFullError,
    "token_replay_cache_full": TokenReplayCacheFullError,
    "token_revocations_unknown": TokenRevocationsUnknownError,
    "nonce_store_full": NonceStoreFullError,
    "too_many_connections": TooManyConnectionsError,
    "too_many_subscribers": TooManySubscribersError,
}

#: The class of each HTTP status, for codes newer than this package.
BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    408: RequestTimeoutError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableError,
    426: UpgradeRequiredError,
    429: TooManyRequestsError,
    500: ServerError,
    503: ServiceUnavailableError,
}


def api_error(status: int, code: str, message: str) -> ApiError:
    """The exception for an error answer (called by the native module)."""
    cls = BY_CODE.get(code) or BY_STATUS.get(status, ApiError)
    return cls(status, code, message)

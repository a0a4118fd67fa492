//! Known answer for the bytes an agent signs to authenticate a request
//! (docs/FORMAT.md, "Agent-signed requests"): the expected bytes are
//! written out by hand here, so a change to the encoding fails this test.
#![allow(clippy::unwrap_used)]

use verifier::entry::signing::{request_message, REQUEST_CONTEXT};

#[test]
fn request_message_v2_binds_origin_and_agent() {
    let message = request_message(
        "ledger.example/agents",
        "spiffe://example.org/agent/a",
        "POST",
        "/v1/agents/spiffe%3A%2F%2Fexample.org%2Fagent%2Fa/nonce",
        1_700_000_000_123,
        b"",
    );
    let expected = concat!(
        "agent-ledger/agent-request/v2\n",
        "ledger.example/agents\n",
        "spiffe://example.org/agent/a\n",
        "POST\n",
        "/v1/agents/spiffe%3A%2F%2Fexample.org%2Fagent%2Fa/nonce\n",
        "1700000000123\n",
        // SHA-256 of the empty body.
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert_eq!(String::from_utf8(message).unwrap(), expected);
    assert_eq!(REQUEST_CONTEXT, b"agent-ledger/agent-request/v2\n");

    // Each bound field changes the bytes.
    let base = request_message("o", "a", "POST", "/p", 1, b"{}");
    for other in [
        request_message("o2", "a", "POST", "/p", 1, b"{}"),
        request_message("o", "a2", "POST", "/p", 1, b"{}"),
        request_message("o", "a", "PUT", "/p", 1, b"{}"),
        request_message("o", "a", "POST", "/q", 1, b"{}"),
        request_message("o", "a", "POST", "/p", 2, b"{}"),
        request_message("o", "a", "POST", "/p", 1, b"[]"),
    ] {
        assert_ne!(base, other);
    }
}

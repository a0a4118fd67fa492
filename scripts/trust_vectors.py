#!/usr/bin/env python3
"""Writes tests/vectors/trust-scores.json and tests/vectors/trust-drift.json.

    python3 scripts/trust_vectors.py

An implementation of docs/TRUST.md of its own, in Python integers (no
floats), written from that page rather than from the Rust code, so that
`verifier/tests/trust_vectors.rs` checks the Rust folds against a second
reading of the specification. It also checks that docs/policy.example.toml
is the default policy. The tables come from scripts/trust_tables.py.
"""

import hashlib
import json
import os
import random
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trust_tables  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP2 = trust_tables.exp2_frac()
LOG2 = trust_tables.log2_frac()
LN2_Q64 = trust_tables.ln2_q64()
ONE = 1 << 32
CAP = 1 << 62
RECENT = 8
LEVELS = ["low", "medium", "high"]  # by risk
SIGNALS = ["threat_intel", "vulnerability", "siem", "ueba"]
SEVERITIES = ["low", "medium", "high", "critical"]

# ---------------------------------------------------------------- policy


def default_policy() -> dict:
    sev = lambda a, b, c, d: {"low": a, "medium": b, "high": c, "critical": d}  # noqa: E731
    return {
        "version": 1,
        "evidence_half_life_s": 2592000,
        "attestation_half_life_s": 604800,
        "attestation_grace_s": 86400,
        "peer_report_interval_s": 86400,
        "initial_score": 60,
        "revocation_threshold": 30,
        "levels": {"low_min": 70, "medium_min": 40, "hysteresis": 5},
        "weights_milli": {
            "attestation": {"software_ok": 1000, "tpm_ok": 2000, "failed": 4000},
            "drift": {"moderate": 1000, "significant": 4000},
            "signals": {
                "threat_intel": sev(1000, 2000, 4000, 8000),
                "vulnerability": sev(500, 1000, 2000, 4000),
                "siem": sev(500, 1000, 3000, 6000),
                "ueba": sev(500, 1000, 3000, 6000),
            },
            "peer_report": {"positive": 500, "negative": 1000},
        },
        "drift": {"buckets": 64, "baseline_events": 1000, "window_events": 256, "moderate_milli": 100, "significant_milli": 250},
    }


def canonical(value) -> str:
    # RFC 8785 for objects of ASCII keys and integers.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def policy_with(**changes) -> dict:
    p = json.loads(json.dumps(default_policy()))
    for path, v in changes.items():
        node = p
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = v
    return p


# ---------------------------------------------------------------- fixed point


def dec(delta: int, h: int) -> int:
    h = max(h, 1)
    k = delta // h
    if k >= 33:
        return 0
    return EXP2[(delta % h) * 256 // h] >> k


def mul(a: int, b: int) -> int:
    return (a * b) >> 32


def from_milli(m: int) -> int:
    return (m << 32) // 1000


def to_milli(q: int) -> int:
    return (q * 1000) >> 32


def expectation_q64(r: int, s: int) -> int:
    return ((r + (1 << 64)) << 32) // (r + s + (1 << 65))


def expectation(r: int, s: int) -> int:
    return expectation_q64(r << 32, s << 32)


def score_of(e: int, f: int) -> int:
    return (100 * min(e, ONE) * min(f, ONE)) >> 64


def log2(x: int) -> int:
    if x == 0:
        return 0
    k = x.bit_length() - 1
    m = ((x << 32) >> k) - ONE
    j = m >> 24
    lo, hi = LOG2[j], LOG2[j + 1]
    return (k << 32) + lo + (((hi - lo) * (m & 0xFFFFFF)) >> 24)


# ---------------------------------------------------------------- trust


def least(pred) -> int:
    if pred(0):
        return 0
    lo, hi = 0, CAP
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi


def initial_evidence(p: dict):
    s = p["initial_score"]
    at = lambda r, x: score_of(expectation(r, x), ONE)  # noqa: E731
    if s >= 50:
        return least(lambda r: at(r, 0) >= s), 0
    return 0, least(lambda x: at(0, x) <= s)


def band(p: dict, score: int) -> str:
    if score >= p["levels"]["low_min"]:
        return "low"
    if score >= p["levels"]["medium_min"]:
        return "medium"
    return "high"


def lower_edge(p: dict, level: str) -> int:
    return {"low": p["levels"]["low_min"], "medium": p["levels"]["medium_min"], "high": 0}[level]


def target(p: dict, logged: str, score: int) -> str:
    b = band(p, score)
    if LEVELS.index(b) > LEVELS.index(logged):
        return b
    for lv in LEVELS[: LEVELS.index(logged)]:
        if score >= lower_edge(p, lv) + p["levels"]["hysteresis"]:
            return lv
    return logged


def weights(p: dict, ev: dict):
    w = p["weights_milli"]
    t = ev["type"]
    if t == "attestation":
        if ev["ok"]:
            return (w["attestation"]["tpm_ok" if ev["tpm"] else "software_ok"], 0)
        return (0, w["attestation"]["failed"])
    if t == "drift":
        return (0, w["drift"]["significant" if ev["significant"] else "moderate"])
    if t == "signal":
        return (0, w["signals"][ev["kind"]][ev["severity"]])
    if t == "peer_report":
        base = w["peer_report"]["positive" if ev["positive"] else "negative"]
        scaled = base * min(ev["reporter_score"], 100) // 100
        return (scaled, 0) if ev["positive"] else (0, scaled)
    raise ValueError(t)


class Trust:
    def __init__(self, p: dict, index: int, t: int):
        self.r, self.s = initial_evidence(p)
        self.e = expectation(self.r, self.s)
        self.te = t
        self.registered = (index, t)
        self.fresh = t
        self.last_ok = None
        self.revoked = None
        self.level = band(p, p["initial_score"])
        self.recent = [index]

    def push(self, index: int):
        self.recent = (self.recent + [index])[-RECENT:]

    def d(self, p, t):
        return dec(max(t - self.te, 0), p["evidence_half_life_s"] * 1000)

    def expectation_at(self, p, t):
        d = self.d(p, t)
        return min(self.e, expectation_q64(self.r * d, self.s * d))

    def freshness_at(self, p, t):
        since = max(max(t - self.fresh, 0) - p["attestation_grace_s"] * 1000, 0)
        return dec(since, p["attestation_half_life_s"] * 1000)

    def score(self, p, t):
        if self.revoked is not None:
            return 0
        return score_of(self.expectation_at(p, t), self.freshness_at(p, t))

    def apply(self, p, index, time, ev):
        t = max(time, self.te)
        before = self.score(p, t)
        wp, wn = weights(p, ev)
        if wp or wn:
            d = self.d(p, t)
            rd, sd = self.r * d, self.s * d
            gap = max(expectation_q64(rd, sd) - self.e, 0)
            qp, qn = from_milli(wp), from_milli(wn)
            r = min(mul(self.r, d) + qp, CAP)
            s = min(mul(self.s, d) + qn, CAP)
            moved = expectation_q64(rd + (qp << 32), sd + (qn << 32))
            self.e = min(expectation(r, s), max(moved - gap, 0))
            self.r, self.s, self.te = r, s, t
        if ev["type"] == "attestation" and ev["ok"]:
            self.last_ok = (index, t)
            self.fresh = max(self.fresh, t)
        if self.score(p, t) != before:
            self.push(index)

    def revoke(self, index, time):
        if self.revoked is None:
            self.revoked = (index, max(time, self.te))
            self.push(index)

    def reinstate(self, p, index, time):
        t = max(time, self.te)
        self.r, self.s = initial_evidence(p)
        self.e, self.te = expectation(self.r, self.s), t
        self.fresh = max(self.fresh, t)
        self.revoked = None
        self.push(index)

    def crossing(self, p, start, threshold):
        if threshold == 0:
            return None
        below = lambda t: self.score(p, t) < threshold  # noqa: E731
        if below(start):
            return start
        end = min(self.fresh + p["attestation_grace_s"] * 1000 + 33 * p["attestation_half_life_s"] * 1000, 2**64 - 1)
        if not below(end):
            return None
        lo, hi = start, end
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if below(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def level_crossing(self, p, start):
        return self.crossing(p, start, lower_edge(p, self.level))

    def components(self, p, t):
        d = self.d(p, t)
        return {
            "score": self.score(p, t),
            "expectation_permille": to_milli(self.expectation_at(p, t)),
            "freshness_permille": to_milli(self.freshness_at(p, t)),
            "evidence_for_milli": to_milli(mul(self.r, d)),
            "evidence_against_milli": to_milli(mul(self.s, d)),
            "last_attestation_index": None if self.last_ok is None else self.last_ok[0],
            "revoked": None if self.revoked is None else self.revoked[0],
        }

    def to_bytes(self) -> bytes:
        flags = (self.last_ok is not None) | ((self.revoked is not None) << 1)
        out = bytes([1, flags, LEVELS.index(self.level), len(self.recent)])
        ok = self.last_ok or (0, 0)
        rv = self.revoked or (0, 0)
        words = [self.r, self.s, self.e, self.te, *self.registered, self.fresh, *ok, *rv] + self.recent + [0] * (RECENT - len(self.recent))
        return out + b"".join(w.to_bytes(8, "big") for w in words)


def run_trust_case(name, note, policy, register, steps):
    """Runs `steps` (ops, and reads filled in here) and returns the case."""
    t = Trust(policy, *register)
    out = []
    for step in steps:
        op = step["op"]
        if op == "apply":
            t.apply(policy, step["index"], step["time_ms"], step["evidence"])
        elif op == "revoke":
            t.revoke(step["index"], step["time_ms"])
        elif op == "reinstate":
            t.reinstate(policy, step["index"], step["time_ms"])
        elif op == "set_level":
            t.level = step["level"]
        elif op == "read":
            at = step["time_ms"]
            step = dict(step)
            step["components"] = t.components(policy, at)
            step["target_level"] = target(policy, t.level, t.score(policy, at))
            step["crossings"] = [[th, t.crossing(policy, at, th)] for th in step.pop("thresholds")]
            step["level_crossing"] = t.level_crossing(policy, at)
            step["recent"] = list(t.recent)
        out.append(step)
    return {
        "name": name,
        "note": note,
        "policy": canonical(policy),
        "policy_sha256": hashlib.sha256(canonical(policy).encode()).hexdigest(),
        "register": {"index": register[0], "time_ms": register[1]},
        "steps": out,
        "state": t.to_bytes().hex(),
    }


# ---------------------------------------------------------------- drift


def resource_class(resource: str) -> bytes:
    b = resource.encode()
    at = resource.find("://")
    if at >= 0:
        at = len(resource[:at].encode())
        rest = b[at + 3 :]
        cut = [i for i, c in enumerate(rest) if c in b"/?#"]
        end = at + 3 + (cut[0] if cut else len(rest))
    else:
        cut = [i for i, c in enumerate(b) if c in b"/?#:"]
        end = cut[0] if cut else len(b)
    return bytes(c + 32 if 65 <= c <= 90 else c for c in b[:end] if not 48 <= c <= 57)


def bucket(action: str, resource: str, buckets: int) -> int:
    a = action.encode()
    h = hashlib.sha256(b"agent-ledger/drift/v1" + len(a).to_bytes(8, "big") + a + resource_class(resource)).digest()
    return int.from_bytes(h[:8], "big") % buckets if buckets else 0


def psi_milli(baseline, window) -> int:
    b = len(baseline)
    n, w = sum(baseline), sum(window)
    if n == 0:
        return 0
    total = 0
    for c, k in zip(baseline, window):
        a, cc = n * (k + 1), c * w + n
        total += abs(a - cc) * abs(log2(a) - log2(cc))
    return ((total // (n * (w + b))) * 1000 * LN2_Q64) >> 96


class Drift:
    def __init__(self, p):
        self.b = p["drift"]["buckets"]
        self.baseline = [0] * self.b
        self.window = [0] * self.b
        self.bn = self.wn = self.first = 0

    def observe(self, p, index, bucket_):
        i = bucket_ % self.b
        dp = p["drift"]
        if self.bn < dp["baseline_events"]:
            self.baseline[i] += 1
            self.bn += 1
            return None
        if self.wn == 0:
            self.first = index
        self.window[i] += 1
        self.wn += 1
        if self.wn < dp["window_events"]:
            return None
        psi = psi_milli(self.baseline, self.window)
        first = self.first
        self.window = [0] * self.b
        self.wn = self.first = 0
        if psi < dp["moderate_milli"]:
            return None
        return {"psi_milli": psi, "significant": psi >= dp["significant_milli"], "first_index": first, "last_index": index}

    def to_bytes(self) -> bytes:
        out = bytes([2]) + self.b.to_bytes(2, "big") + self.bn.to_bytes(4, "big") + self.wn.to_bytes(4, "big") + self.first.to_bytes(8, "big")
        return out + b"".join(leb128(c) for c in self.baseline + self.window)


def leb128(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def run_drift_case(name, note, policy, first_index, buckets):
    d = Drift(policy)
    findings = []
    for i, b in enumerate(buckets):
        f = d.observe(policy, first_index + i, b)
        if f:
            findings.append(f)
    return {"name": name, "note": note, "policy": canonical(policy), "first_index": first_index, "buckets": buckets, "findings": findings, "state": d.to_bytes().hex()}


# ---------------------------------------------------------------- cases

H = 1_024_000  # 1024 s: H / 256 = 4000 ms
GRACE = 1_000_000_000
HAND = policy_with(initial_score=50, evidence_half_life_s=1024, attestation_half_life_s=1024, attestation_grace_s=1_000_000)
TPM_OK = {"type": "attestation", "ok": True, "tpm": True}
SW_OK = {"type": "attestation", "ok": True, "tpm": False}
FAILED = {"type": "attestation", "ok": False, "tpm": False}


def read(t, *thresholds):
    return {"op": "read", "time_ms": t, "thresholds": list(thresholds) or [0, 30, 40, 70]}


def random_evidence(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return {"type": "attestation", "ok": rng.random() < 0.8, "tpm": rng.random() < 0.5}
    if kind == 1:
        return {"type": "drift", "significant": rng.random() < 0.3}
    if kind == 2:
        return {"type": "signal", "kind": rng.choice(SIGNALS), "severity": rng.choice(SEVERITIES)}
    return {"type": "peer_report", "positive": rng.random() < 0.6, "reporter_score": rng.randrange(101)}


def random_steps(rng, policy, count, start):
    steps, t, index = [], start, 1
    h = policy["evidence_half_life_s"] * 1000
    for _ in range(count):
        t += rng.choice([0, rng.randrange(1000), rng.randrange(h // 8 + 1), rng.randrange(2 * h + 1)])
        x = rng.random()
        if x < 0.04:
            steps.append({"op": "revoke", "index": index, "time_ms": t})
        elif x < 0.08:
            steps.append({"op": "reinstate", "index": index, "time_ms": t})
        elif x < 0.12:
            steps.append({"op": "set_level", "level": rng.choice(LEVELS)})
        else:
            # Now and then an event stamped earlier than the last: taken at the last.
            at = t - rng.randrange(5000) if rng.random() < 0.05 else t
            steps.append({"op": "apply", "index": index, "time_ms": max(at, 0), "evidence": random_evidence(rng)})
        index += 1
        if rng.random() < 0.3:
            steps.append(read(t + rng.choice([0, 1, rng.randrange(3 * h + 1)]), 0, rng.randrange(101), rng.randrange(101)))
    return steps


def trust_cases():
    cases = [
        run_trust_case(
            "one half-life halves the evidence",
            "Initial score 50 (no pseudo-evidence). A TPM attestation adds 2 units: E = 3/4, score 75. One evidence "
            "half-life (1024 s) later r = 1 exactly: E = 2/3, score 66. A medium SIEM signal (1 unit against) then "
            "gives r = s = 1: E = 1/2, score 50.",
            HAND,
            (0, 0),
            [
                read(0),
                {"op": "apply", "index": 1, "time_ms": 0, "evidence": TPM_OK},
                read(0),
                read(H),
                {"op": "apply", "index": 2, "time_ms": H, "evidence": {"type": "signal", "kind": "siem", "severity": "medium"}},
                read(H),
            ],
        ),
        run_trust_case(
            "freshness crossings by hand",
            "Initial score 50, never attested: fresh from registration for the 10^6 s grace, then F halves every 1024 s "
            "in 256 steps of 4000 ms. 50·F < 25 first when F = EXP2_FRAC[1] >> 1, at grace + H + 4000 ms; the Medium "
            "level falls (50·F < 40) first at table index 83: 2^(-83/256) < 0.8 <= 2^(-82/256), at grace + 83·4000 ms.",
            HAND,
            (0, 0),
            [read(0, 25, 40, 50, 51), read(GRACE + H, 25, 26), read(GRACE + H + 3999, 25), read(GRACE + H + 4000, 25)],
        ),
        run_trust_case(
            "waiting never raises a low expectation",
            "A failed attestation (4 units against): E = 1/6, score 16, and it stays 16 ten half-lives on although the "
            "decayed evidence alone would say about 1/2; a second failure then lowers it.",
            HAND,
            (0, 0),
            [
                {"op": "apply", "index": 1, "time_ms": 0, "evidence": FAILED},
                read(0),
                read(10 * H),
                {"op": "apply", "index": 2, "time_ms": 10 * H, "evidence": FAILED},
                read(10 * H),
                {"op": "apply", "index": 3, "time_ms": 12 * H, "evidence": SW_OK},
                read(12 * H),
            ],
        ),
        run_trust_case(
            "default policy lifecycle",
            "The default policy: registration at 60 (Medium), attestations, a significant drift, signals, peer reports, "
            "a revocation, a reinstatement and logged levels.",
            default_policy(),
            (10, 1_800_000_000_000),
            [
                read(1_800_000_000_000),
                {"op": "apply", "index": 11, "time_ms": 1_800_000_060_000, "evidence": TPM_OK},
                read(1_800_000_060_000),
                {"op": "set_level", "level": "low"},
                {"op": "apply", "index": 12, "time_ms": 1_800_086_400_000, "evidence": {"type": "peer_report", "positive": True, "reporter_score": 90}},
                {"op": "apply", "index": 13, "time_ms": 1_800_090_000_000, "evidence": {"type": "drift", "significant": True}},
                read(1_800_090_000_000),
                {"op": "apply", "index": 14, "time_ms": 1_800_100_000_000, "evidence": {"type": "signal", "kind": "threat_intel", "severity": "critical"}},
                read(1_800_100_000_000),
                {"op": "set_level", "level": "high"},
                {"op": "revoke", "index": 15, "time_ms": 1_800_200_000_000},
                read(1_800_200_000_000),
                {"op": "reinstate", "index": 16, "time_ms": 1_800_300_000_000},
                read(1_800_300_000_000),
                {"op": "apply", "index": 17, "time_ms": 1_800_300_000_000, "evidence": SW_OK},
                {"op": "apply", "index": 18, "time_ms": 1_800_200_000_000, "evidence": {"type": "peer_report", "positive": False, "reporter_score": 100}},
                read(1_800_400_000_000),
                read(1_803_000_000_000),
            ],
        ),
        run_trust_case(
            "initial score below one half",
            "Initial score 30 sits in negative pseudo-evidence s0 (about 1.2258 units); attestations raise it.",
            policy_with(initial_score=30, revocation_threshold=20),
            (0, 5000),
            [
                read(5000),
                {"op": "apply", "index": 1, "time_ms": 6000, "evidence": TPM_OK},
                read(6000),
                {"op": "apply", "index": 2, "time_ms": 7000, "evidence": TPM_OK},
                read(90_000_000_000),
            ],
        ),
    ]
    for seed, policy in [(1, default_policy()), (2, HAND), (3, policy_with(evidence_half_life_s=3600, attestation_half_life_s=600, attestation_grace_s=60, initial_score=80))]:
        rng = random.Random(seed)
        cases.append(
            run_trust_case(
                f"random sequence {seed}",
                "Seeded random events, revocations, reinstatements, levels and reads (random.Random(%d))." % seed,
                policy,
                (0, 1_700_000_000_000),
                random_steps(rng, policy, 200, 1_700_000_000_000),
            )
        )
    return cases


def drift_cases():
    small = policy_with(drift__buckets=2, drift__baseline_events=2, drift__window_events=2)
    cases = [
        run_drift_case(
            "by hand",
            "B = 2, baseline [0, 1] (p = 1/2, 1/2), window [0, 0] (q = 3/4, 1/4): PSI = ln(3/2)/4 + ln(2)/4 = 0.27465, "
            "significant; the next window [0, 1] equals the baseline: no finding.",
            small,
            10,
            [0, 1, 0, 0, 0, 1],
        )
    ]
    rng = random.Random(7)
    p = default_policy()
    # The agent keeps to 8 buckets 90% of the time; later windows move a growing share elsewhere.
    usual = lambda: rng.randrange(8) if rng.random() < 0.9 else rng.randrange(64)  # noqa: E731
    seq = [usual() for _ in range(1000)]
    for shift in [0.0, 0.1, 0.3, 0.6, 1.0]:
        seq += [rng.randrange(8, 64) if rng.random() < shift else usual() for _ in range(256)]
    seq += [usual() for _ in range(100)]  # an open window
    cases.append(run_drift_case("default policy, drifting windows", "1000 baseline observations, 5 windows of 256 moving 0%, 10%, 30%, 60%, 100% of observations to other buckets, 100 more.", p, 1000, seq))
    psi = [
        {"baseline": [1, 1], "window": [2, 0]},
        {"baseline": [5, 5, 5], "window": [5, 5, 5]},
        {"baseline": [100, 0, 0, 0], "window": [0, 0, 0, 25]},
        {"baseline": [3, 1, 4, 1, 5, 9, 2, 6], "window": [2, 7, 1, 8, 2, 8, 1, 8]},
        {"baseline": [1 << 20] + [0] * 1023, "window": [0] * 1023 + [1 << 20]},
    ]
    for c in psi:
        c["psi_milli"] = psi_milli(c["baseline"], c["window"])
    buckets = [
        {"action": a, "resource": r, "buckets": b}
        for a, r, b in [
            ("read", "db/invoices/42", 64),
            ("read", "DB/users", 64),
            ("write", "https://API.example.com:8443/v1/users?id=7", 64),
            ("exec", "queue-17:jobs", 1024),
            ("ab", "c", 65535),
            ("a", "bc", 65535),
            ("read", "", 2),
            ("π", "データ/1", 1000),
        ]
    ]
    for c in buckets:
        c["class"] = resource_class(c["resource"]).decode()
        c["bucket"] = bucket(c["action"], c["resource"], c["buckets"])
    return {"buckets": buckets, "psi": psi, "sequences": cases}


def check_example_toml():
    with open(os.path.join(ROOT, "docs", "policy.example.toml"), "rb") as f:
        toml = tomllib.load(f)
    assert canonical(toml) == canonical(default_policy()), "docs/policy.example.toml is not the default policy"


def main():
    check_example_toml()
    dp = default_policy()
    scores = {
        "description": "Trust fold vectors (docs/TRUST.md): a policy (its canonical JSON and SHA-256), a registration, steps (apply, revoke, reinstate, "
        "set_level) and reads with the expected components, target level, crossings [threshold, first ms or null], "
        "level crossing and recent indices, then the AgentTrust::to_bytes of the final state (hex).",
        "generator": "python3 scripts/trust_vectors.py (an implementation of docs/TRUST.md of its own)",
        "tables_sha256": trust_tables.sha256(),
        "default_policy": {"canonical": canonical(dp), "sha256": hashlib.sha256(canonical(dp).encode()).hexdigest()},
        "cases": trust_cases(),
    }
    drift = {
        "description": "Drift fold vectors (docs/TRUST.md, Drift): bucket hashes and resource classes, PSI of "
        "histograms, and observation sequences under a policy (canonical JSON) (bucket of the entry at first_index + i) with the expected findings "
        "and the DriftState::to_bytes of the final state (hex).",
        "generator": "python3 scripts/trust_vectors.py (an implementation of docs/TRUST.md of its own)",
        **drift_cases(),
    }
    for name, value in [("trust-scores.json", scores), ("trust-drift.json", drift)]:
        with open(os.path.join(ROOT, "tests", "vectors", name), "w") as f:
            f.write(dump(value) + "\n")


def dump(value, depth=0, key=None) -> str:
    """JSON with objects indented and each list item (a step, a finding, a
    histogram) on one line."""
    pad = " " * (depth + 1)
    if isinstance(value, dict) and key not in ("evidence", "components", "policy"):
        items = [f"{pad}{json.dumps(k)}: {dump(v, depth + 1, k)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if key in ("cases", "sequences"):
        return "[\n" + ",\n".join(pad + dump(v, depth + 1) for v in value) + "\n" + " " * depth + "]"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[\n" + ",\n".join(pad + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value) + "\n" + " " * depth + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main()

"""decide() latency for the sample bundle, against one Ed25519 verification.

    python -m bench.decide [--rounds 2000] [--record]

The sample bundle (every catalogue rule, screening lists, the CEL rule) trusts a
throw-away PKI made as `eucgate policy test` makes it (policytest.CasePki). Measured in
the same run, as medians of per-call wall-clock times:

- baseline: one Ed25519 verification over the PAE of the approved envelope (~3 KiB);
- decide() of the sample EUC (APPROVED: every rule runs, nothing short-circuits), with
  a warm ChainCache as the server's Gate holds one, and without a cache;
- decide() over the bundle's own test cases in turn (all outcomes), warm cache;
- decoding the approved envelope's JSON payload into a Submission, which the server
  and replay do before each decide(), in its own row.

Envelopes are decoded into Submissions before the clock starts: the decide() rows time
decide() alone. The ratios are what to compare across machines. `--record` appends the table
and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate import samples
from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundle import Bundle
from eucgate.core.decide import decide
from eucgate.core.decision import Outcome
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import PAYLOAD_TYPE_JSON
from eucgate.core.pki import ChainCache
from eucgate.core.submission import Submission
from eucgate.policyfiles import load_bundle
from eucgate.policytest import CasePki, case_bundle, case_envelope
from eucgate.signing import sign_envelope
from eucgate_client.dsse import Envelope
from google.protobuf import json_format

from bench.timing import medians_us

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _submission(envelope: Envelope) -> Submission:
    return Submission.from_envelope(envelope, max_payload_bytes=1 << 20, max_signatures=8)


def _setup() -> tuple[Bundle, Envelope, list[tuple[Bundle, Submission, datetime]]]:
    """The bundle trusting a fresh PKI, the approved sample envelope, and every test case
    as (bundle, submission, now)."""
    sample = load_bundle(SAMPLE_BUNDLE)
    assert sample.tests is not None, "the sample bundle carries test cases"
    pki = CasePki()
    bundle = pki.trusting(sample)
    signer = pki.signer(samples.JAY_USHIN.legal_name, samples.JAY_USHIN.registrations, trusted=True)
    payload = json_format.MessageToJson(samples.certificate(NOW)).encode()
    approved = sign_envelope(PAYLOAD_TYPE_JSON, payload, [signer])
    cases = [
        (
            case_bundle(bundle, case, pki),
            _submission(case_envelope(sample.tests, case, pki)),
            case.now,
        )
        for case in sample.tests.cases
    ]
    return bundle, approved, cases


def measure(rounds: int) -> dict[str, float]:
    """Median microseconds per call: baseline, cache, no cache, cases; and the rule count."""
    bundle, approved, cases = _setup()
    submission = _submission(approved)
    cache = ChainCache()
    decision = decide(submission, bundle, EmptyLedger(), NOW, chain_cache=cache)
    if decision.outcome is not Outcome.APPROVED:
        raise SystemExit(f"the bench EUC must be approved, got {decision.outcome}: {decision}")
    for case_bundle_, case_submission, now in cases:  # warm the cache for every bundle
        decide(case_submission, case_bundle_, EmptyLedger(), now, chain_cache=cache)
    key = ed25519.Ed25519PrivateKey.generate()
    pae = approved.pae()
    sig = key.sign(pae)
    public = key.public_key()
    n = len(cases)

    def run_case(i: int) -> object:
        case_bundle_, case_submission, now = cases[i % n]
        return decide(case_submission, case_bundle_, EmptyLedger(), now, chain_cache=cache)

    medians = medians_us(
        {
            "baseline": (lambda i: public.verify(sig, pae), rounds),
            "cache": (
                lambda i: decide(submission, bundle, EmptyLedger(), NOW, chain_cache=cache),
                rounds,
            ),
            "no cache": (
                lambda i: decide(submission, bundle, EmptyLedger(), NOW),
                max(1, rounds // 4),
            ),
            "cases": (run_case, rounds),
            "decode": (lambda i: _submission(approved), rounds),
        }
    )
    return {
        **medians,
        "rules": float(len(bundle.rules)),
        "case count": float(n),
        "pae bytes": float(len(pae)),
    }


def render(figures: dict[str, float], command: str) -> str:
    base = figures["baseline"]
    rows = [
        (f"one Ed25519 verification, {figures['pae bytes']:.0f} B (baseline)", "baseline"),
        ("decide(), sample EUC (APPROVED), ChainCache warm", "cache"),
        ("decide(), sample EUC (APPROVED), no cache", "no cache"),
        (f"decide(), the bundle's {figures['case count']:.0f} test cases in turn, warm", "cases"),
        ("Submission.from_envelope, the sample EUC's JSON payload", "decode"),
    ]
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, decide() on the sample bundle",
        "",
        f"Command: `{command}`  ",
        f"Machine: Linux {platform.machine()}, Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__}",
        "",
        f"Sample bundle: {figures['rules']:.0f} rules. decide() alone (the envelope is "
        "decoded before timing); the signature checks inside it are part of the figure.",
        "",
        "| what | median µs | × Ed25519 verify |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {figures[k]:.1f} | {figures[k] / base:.1f} |" for label, k in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    figures = measure(args.rounds)
    command = "python -m bench.decide " + shlex.join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--record"
    )
    text = render(figures, command.strip())
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

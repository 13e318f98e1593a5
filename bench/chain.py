"""Signature and chain verification cost per submission, with and without ChainCache.

    python -m bench.chain [--rounds 2000] [--record]

One submission here is one envelope signed by an end user (Ed25519 leaf under an ECDSA
P-256 intermediate and root, CRLs of both CAs required), verified by
`core.pki.verify_signatures` exactly as decide() does. Measured in the same run:

- baseline: one Ed25519 signature verification over the same PAE bytes;
- no cache: a full chain build per submission (cryptography.x509.verification);
- cache, new signer: a ChainCache warmed by one submission (verified intermediate
  path, CRL signature checks), each submission then signed by a leaf it has not seen;
- cache, known signer: the same ChainCache once it has seen every leaf, which is the
  usual case (an importer's certificate signs each EUC it sends): the verdict on the
  certificates is kept with the times it holds for, and a submission costs its
  envelope signature.

Times are medians of per-call wall-clock times, the rows measured in turn (bench.timing);
the ratios against the baseline are what to compare across machines. `--record` appends
the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate import samples
from eucgate.core.pki import ChainCache, TrustPolicy, verify_signatures
from eucgate.signing import issue_ca, issue_crl, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope
from google.protobuf import json_format

from bench.timing import medians_us

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _setup(leaves: int) -> tuple[TrustPolicy, list[Envelope]]:
    start = NOW - timedelta(days=30)
    end = NOW + timedelta(days=365)
    root = issue_ca("bench root", not_before=start, not_after=end, path_length=1)
    intermediate = issue_ca("bench CA", issuer=root, not_before=start, not_after=end)
    payload = json_format.MessageToJson(samples.certificate(NOW)).encode()
    envelopes = []
    for i in range(leaves):
        key, leaf = issue_signer(
            intermediate,
            organization=samples.JAY_USHIN.legal_name,
            registrations=samples.JAY_USHIN.registrations,
            common_name=f"bench signer {i}",
            country="IN",
            not_before=start,
            not_after=end,
        )
        envelopes.append(
            sign_envelope(
                "application/vnd.eucgate.euc.v1+json", payload, [(key, [leaf, intermediate[1]])]
            )
        )
    crls = [issue_crl(ca, this_update=start, next_update=end) for ca in (root, intermediate)]
    policy = TrustPolicy.from_anchors(
        {"end_user": [root[1]]}, {"end_user": crls}, require_crls=True
    )
    return policy, envelopes


def measure(rounds: int) -> dict[str, float]:
    """Median microseconds per call: baseline, no cache, cache."""
    policy, envelopes = _setup(min(rounds, 500) + 1)
    key = ed25519.Ed25519PrivateKey.generate()
    pae = envelopes[0].pae()
    sig = key.sign(pae)
    public = key.public_key()

    def check(envelope: Envelope, cache: ChainCache | None) -> None:
        (result,) = verify_signatures(envelope, policy, NOW, cache=cache)
        if not (result.verified and result.revocation == "good"):
            raise SystemExit(f"bench envelope did not verify: {result}")

    fresh = ChainCache()
    check(envelopes[0], fresh)  # warm: the intermediate's path and the CRL checks
    known = ChainCache()
    for envelope in envelopes:
        check(envelope, known)
    new = envelopes[1:]  # each verified once against `fresh`: a signer it has not seen
    n = len(envelopes)
    return medians_us(
        {
            "baseline": (lambda i: public.verify(sig, pae), rounds),
            "no cache": (lambda i: check(envelopes[i % n], None), rounds),
            "new signer": (lambda i: check(new[i], fresh), len(new)),
            "known signer": (lambda i: check(envelopes[i % n], known), rounds),
        }
    )


def render(figures: dict[str, float], command: str) -> str:
    base = figures["baseline"]
    rows = [
        ("one Ed25519 verification (baseline)", "baseline"),
        ("verify_signatures, no cache", "no cache"),
        ("verify_signatures, ChainCache, a signer it has not seen", "new signer"),
        ("verify_signatures, ChainCache, a signer it has seen", "known signer"),
    ]
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, signature and chain verification",
        "",
        f"Command: `{command}`  ",
        f"Machine: Linux {platform.machine()}, Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__}",
        "",
        "| per submission (1 end-user signature, 2-CA chain, 2 CRLs) | median µs | × baseline |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {figures[k]:.1f} | {figures[k] / base:.2f} |" for label, k in rows),
        "",
        f"The cache saves {(1 - figures['new signer'] / figures['no cache']) * 100:.0f} % of "
        "the verification cost for a new signer under a known CA, "
        f"{(1 - figures['known signer'] / figures['no cache']) * 100:.0f} % for a known one.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    figures = measure(args.rounds)
    command = "python -m bench.chain " + shlex.join(
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

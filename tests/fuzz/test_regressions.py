"""What fuzzing found, each kept as a plain test next to its corpus file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.core.bundleload import parse_bundle
from eucgate.errors import BundleError
from eucgate.log.entry import EntryError, check_any_entry, encode_entry
from eucgate.log.export import stated_size
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    open_checkpoint,
    parse_checkpoint_body,
)

from tests.logdata import make_record

ROOT = Path(__file__).resolve().parents[2]
CONTROL = 'version: 1\nname: "a\x01"\nrules: []\n'


def test_a_control_character_in_a_bundle_is_a_bundle_error_with_its_line() -> None:
    """yaml.ReaderError escaped parse_bundle (UNKNOWN over gRPC, a traceback in the CLI)."""
    with pytest.raises(BundleError) as info:
        parse_bundle(CONTROL, "candidate.yaml")
    assert str(info.value) == (
        "candidate.yaml:2: not valid YAML: the character U+0001 is not allowed in YAML text"
    )


def test_policy_check_reports_a_control_character_without_a_traceback(tmp_path: Path) -> None:
    bundle = tmp_path / "candidate.yaml"
    bundle.write_text(CONTROL)
    result = subprocess.run(
        [sys.executable, "-m", "eucgate", "policy", "check", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "160"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert f"{bundle}:2: not valid YAML" in output


def test_a_signature_line_outside_ascii_is_a_malformed_checkpoint() -> None:
    """base64 raised ValueError for a non-ASCII character in a note's signature line."""
    verifier = NoteVerifier.from_key(
        "fuzz.example/log", ed25519.Ed25519PrivateKey.generate().public_key()
    )
    note = "fuzz.example/log\n1\n" + "A" * 43 + "=\n\n\u2014 fuzz.example/log AAAA\u00e9AAA=\n"
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(note, verifier)
    assert info.value.reason == "CHECKPOINT_MALFORMED"


@pytest.mark.parametrize(
    "body",
    ["o\n" + "9" * 5000 + "\n" + "A" * 43 + "=\n", "o\n3\nAA\u00e9=\n"],
    ids=["size-over-int-digits", "root-outside-ascii"],
)
def test_a_checkpoint_body_never_raises_anything_but_checkpoint_error(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint_body(body)


def test_the_stated_size_of_an_export_never_raises(tmp_path: Path) -> None:
    (tmp_path / "checkpoint").write_text("o\n" + "9" * 5000 + "\nroot\n")
    assert stated_size(tmp_path) is None
    (tmp_path / "checkpoint").write_text("o\n\u0663\nroot\n")  # an Arabic-Indic digit
    assert stated_size(tmp_path) is None
    (tmp_path / "checkpoint").write_text("o\n42\nroot\n")
    assert stated_size(tmp_path) == 42


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        (b'"caller":"anonymous"', b'"caller":"\\ud800"'),  # a lone surrogate
        (b'"envelope":"', b'"envelope":"\xc3\xa9'),  # base64 with a character outside ASCII
    ],
    ids=["lone-surrogate", "non-ascii-base64"],
)
def test_an_entry_never_raises_anything_but_entry_error(original: bytes, changed: bytes) -> None:
    """Both raised out of `audit verify` (UnicodeEncodeError, ValueError), which must name
    the first bad leaf instead."""
    raw = encode_entry(make_record(1))
    assert original in raw
    with pytest.raises(EntryError) as info:
        check_any_entry(raw.replace(original, changed))
    assert info.value.reason == "LOG_ENTRY_MALFORMED"

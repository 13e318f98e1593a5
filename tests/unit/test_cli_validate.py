"""`eucgate validate`: the service's own EUC checks, offline, every problem at once."""

from __future__ import annotations

import json
from pathlib import Path

from eucgate.cli.main import app
from eucgate.cli.output import Exit
from typer.testing import CliRunner

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "euc.json"

runner = CliRunner()


def _broken(tmp_path: Path) -> Path:
    doc = json.loads(EXAMPLE.read_text())
    for name in ("issuedAt", "validity", "signatory"):
        del doc[name]
    doc["endUser"]["legalName"] = ""
    doc["items"][0]["hsCode"] = "85-05"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_example_is_valid() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == Exit.OK, result.output
    assert "valid" in result.output
    assert "JUL-EUC-2026-0042" in result.output


def test_every_problem_is_printed_once_and_exits_as_a_refusal(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(_broken(tmp_path))])
    assert result.exit_code == Exit.REFUSED
    assert "5 problems (PAYLOAD_MISSING_FIELD)" in result.output
    for field in ("issued_at", "validity", "end_user.legal_name", "items[0].hs_code", "signatory"):
        assert result.output.count(field) == 1, field
    assert "end_user.legal_name: end_user.legal_name" not in result.output


def test_json_output_lists_every_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(_broken(tmp_path)), "--json"])
    assert result.exit_code == Exit.REFUSED
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["reason"] == "PAYLOAD_MISSING_FIELD"
    assert [p["field"] for p in report["problems"]] == [
        "issued_at",
        "validity",
        "end_user.legal_name",
        "items[0].hs_code",
        "signatory",
    ]
    assert report["problems"][3] == {
        "field": "items[0].hs_code",
        "description": "must be a Harmonized System code such as '8505.11' or '2846.90'",
        "reason": "PAYLOAD_INVALID_FIELD",
    }
    valid = runner.invoke(app, ["validate", str(EXAMPLE), "--json"])
    assert json.loads(valid.stdout) == {"file": str(EXAMPLE), "valid": True, "problems": []}


def test_undecodable_input_from_stdin_is_refused() -> None:
    result = runner.invoke(app, ["validate", "-"], input='{"certificateNumber": ')
    assert result.exit_code == Exit.REFUSED
    assert "PAYLOAD_INVALID_JSON" in result.output


def test_unreadable_file_and_usage(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", str(tmp_path / "none.json")]).exit_code == Exit.ERROR
    assert runner.invoke(app, ["validate"]).exit_code == Exit.USAGE
    both = runner.invoke(app, ["validate", str(EXAMPLE), "--print-schema"])
    assert both.exit_code == Exit.USAGE


def test_print_schema_is_the_committed_file() -> None:
    result = runner.invoke(app, ["validate", "--print-schema"])
    assert result.exit_code == Exit.OK
    assert result.stdout == (DOCS / "euc.schema.json").read_text()

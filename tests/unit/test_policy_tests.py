"""Bundles carry their own test cases; `eucgate policy check|test` runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from eucgate.cli.main import app
from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundleload import parse_bundle
from eucgate.core.bundletests import merge
from eucgate.errors import BundleError
from eucgate.policyfiles import files_in, load_bundle
from eucgate.policytest import run_bundle_tests
from typer.testing import CliRunner

runner = CliRunner()


def test_every_sample_case_passes_and_every_rule_has_a_case() -> None:
    bundle = load_bundle(SAMPLE_BUNDLE)
    results = run_bundle_tests(bundle)
    assert [r.name for r in results if not r.passed] == []
    covered = {rule for r in results for rule in r.expected_rules}
    assert {rule.id for rule in bundle.rules} <= covered
    assert any(r.expected_outcome == "APPROVED" for r in results)


def _sample_doc() -> dict[str, object]:
    loaded = yaml.safe_load(SAMPLE_BUNDLE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_a_wrong_expectation_fails_the_run(tmp_path: Path) -> None:
    doc = _sample_doc()
    doc["tests"]["cases"][0]["expect"] = {"outcome": "REJECTED", "rules": ["EUS-001"]}  # type: ignore[index]
    path = tmp_path / "bundle.yaml"
    path.write_text(yaml.safe_dump(doc))
    shutil.copytree(SAMPLE_BUNDLE.parent / "lists", tmp_path / "lists")
    result = runner.invoke(app, ["policy", "test", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)["cases"]
    assert json.loads(result.stdout)["failed"] == 1
    first = report[0]
    assert first["passed"] is False
    assert first["got"] == {"outcome": "APPROVED", "rules": []}
    assert all(case["passed"] for case in report[1:])


def test_cli_passes_on_the_sample() -> None:
    cases = len(load_bundle(SAMPLE_BUNDLE).tests.cases)  # type: ignore[union-attr]
    result = runner.invoke(app, ["policy", "test", str(SAMPLE_BUNDLE)])
    assert result.exit_code == 0, result.stdout
    assert f"{cases} passed, 0 failed" in result.stdout
    checked = runner.invoke(app, ["policy", "check", str(SAMPLE_BUNDLE), "--json"])
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["test_cases"] == cases


def test_check_names_the_line_of_a_bad_bundle(tmp_path: Path) -> None:
    text = SAMPLE_BUNDLE.read_text().replace("max_validity_days: 183", "max_validity_days: -1")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    shutil.copytree(SAMPLE_BUNDLE.parent / "lists", tmp_path / "lists")
    result = runner.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "max_validity_days" in t)
    assert f"bad.yaml:{line}" in result.stderr
    assert "parameters.max_validity_days" in result.stderr


def test_a_case_whose_certificate_does_not_parse_is_refused_at_load() -> None:
    doc = _sample_doc()
    doc["tests"]["cases"][3]["patch"] = {"final_destination": "IN"}  # type: ignore[index]
    with pytest.raises(BundleError, match=r"cases\[3\]"):
        parse_bundle(
            json.dumps(doc, default=str), "bundle.json", files=files_in(SAMPLE_BUNDLE.parent)
        )


def test_merge_patch_follows_rfc_7396() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert merge(base, {"a": {"b": None, "c": [3]}, "e": 5}) == {"a": {"c": [3]}, "d": "x", "e": 5}
    assert merge(base, {}) == base
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # the base is never changed

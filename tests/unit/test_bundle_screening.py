"""Screening lists in a bundle: named by file, held inline, covered by the digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundle import load_bundle, parse_bundle
from eucgate.errors import BundleError


def test_list_files_are_read_into_the_bundle() -> None:
    bundle = load_bundle(SAMPLE_BUNDLE)
    kinds = {s.id: s.kind.value for s in bundle.screening_lists}
    assert kinds == {"cn-export-control-list": "control", "sample-watch-list": "watch"}
    assert bundle.screener.size > 10
    again = parse_bundle(bundle.canonical().decode(), "canonical.json")
    assert again.digest == bundle.digest  # the canonical form needs no list files


def test_the_digest_covers_list_entries(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("control-list-sample.yaml", "watch-list-sample.yaml"):
        (lists / name).write_text((SAMPLE_BUNDLE.parent / "lists" / name).read_text())
    copy = tmp_path / "bundle.yaml"
    copy.write_text(SAMPLE_BUNDLE.read_text())
    assert load_bundle(copy).digest == load_bundle(SAMPLE_BUNDLE).digest
    watch = lists / "watch-list-sample.yaml"
    watch.write_text(watch.read_text().replace("Sample Rare Metals", "Sample Rare Metal"))
    assert load_bundle(copy).digest != load_bundle(SAMPLE_BUNDLE).digest


def test_a_missing_list_file_names_the_line(tmp_path: Path) -> None:
    text = SAMPLE_BUNDLE.read_text()
    copy = tmp_path / "bundle.yaml"
    copy.write_text(text)
    with pytest.raises(BundleError) as info:
        load_bundle(copy)
    line = text[: text.index("- file: lists/control")].count("\n") + 1
    assert f"bundle.yaml:{line}: screening_lists[0]: cannot read" in str(info.value)


def test_list_files_need_a_bundle_file() -> None:
    with pytest.raises(BundleError, match="only in a bundle file"):
        parse_bundle(SAMPLE_BUNDLE.read_text(), "stdin")

"""Reading policy from files, at the edge: the core parses text and never opens a file.

A bundle file may name other files (`{file: name}` for screening lists, trust anchors
and CRLs), read relative to the bundle's own directory and inlined, so the bundle that
is validated, digested and signed stands on its own.
"""

from __future__ import annotations

from pathlib import Path

from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import FileReader, parse_bundle
from eucgate.core.screening import ScreeningList, parse_screening_list
from eucgate.errors import BundleError


def files_in(directory: Path) -> FileReader:
    """Reads the files a bundle names, relative to `directory` (the bundle's own)."""

    def read(name: str) -> bytes:
        return (directory / name).read_bytes()

    return read


def load_bundle(path: Path) -> Bundle:
    """Read and validate a bundle file (YAML or JSON).

    Raises BundleError naming the file, line and field path; OSError if unreadable.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_bundle(text, str(path), files=files_in(path.parent))


def load_screening_list(path: Path) -> ScreeningList:
    """Read and validate a list file; raises BundleError, or OSError if unreadable."""
    return parse_screening_list(path.read_text(encoding="utf-8"), str(path))

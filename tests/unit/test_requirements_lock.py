"""requirements.lock (what the container installs, with --require-hashes) agrees with
pyproject.toml: every dependency of the server and the client is locked, at a version
its specifier allows, with its hashes; nothing is locked loose."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
LOCAL = {"eucgate", "eucgate-client"}  # installed from the sources, --no-deps


def _locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) of every requirement in the lock."""
    text = re.sub(r"\\\n\s*", " ", LOCK.read_text())
    locked: dict[str, tuple[Version, list[str]]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"not a hashed pin: {line!r}"
        hashes = re.findall(r"sha256:([0-9a-f]{64})", match.group(3))
        locked[canonicalize_name(match.group(1))] = (Version(match.group(2)), hashes)
    return locked


def _declared() -> list[Requirement]:
    reqs = []
    for pyproject in (ROOT / "pyproject.toml", ROOT / "clients" / "python" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        reqs += [Requirement(r) for r in project["dependencies"]]
        backend = tomllib.loads(pyproject.read_text())["build-system"]["requires"]
        reqs += [Requirement(r) for r in backend]  # built with --no-build-isolation
    return [r for r in reqs if canonicalize_name(r.name) not in LOCAL]


def test_every_lock_entry_is_pinned_with_hashes() -> None:
    locked = _locked()
    assert len(locked) > 30
    for name, (_, hashes) in locked.items():
        assert hashes, f"{name} has no hash"
    assert not LOCAL & set(locked), "local packages are built from source, not locked"


def test_the_lock_satisfies_every_declared_dependency() -> None:
    locked = _locked()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is declared in pyproject.toml but not locked"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req} is declared, the lock has {version}: regenerate requirements.lock"
        )
        for extra in req.extras:  # psycopg[binary] needs psycopg-binary locked too
            if (name, extra) == ("psycopg", "binary"):
                assert "psycopg-binary" in locked


def test_the_lock_says_how_it_was_made() -> None:
    header = LOCK.read_text().split("\n", 3)[:3]
    assert any("uv pip compile" in line and "--generate-hashes" in line for line in header)

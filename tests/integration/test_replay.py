"""Replay of a log made by the real server: exact, forged, what-if, live and offline."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.canonical import canonical_json
from eucgate.log.export import write_export
from eucgate.policyfiles import load_bundle
from eucgate.replay.engine import Status
from eucgate.replay.offline import replay_export
from eucgate.replay.report import render_html
from eucgate.replay.run import ReplayJob
from eucgate.replay.summary import ReplaySummary
from eucgate_client.client import CertificateClient, ReviewClient
from eucgate_client.tlog import NoteVerifier, leaf_hash, root_of
from eucgate_client.v1 import certificate_pb2, decision_pb2
from google.protobuf import timestamp_pb2

from .conftest import Env
from .test_cli import eucgate

JAY_USHIN_DECISIONS = (0, 1, 3, 4)  # approved x3 (one valid 90 days) and the military one


@dataclass(frozen=True)
class Recorded:
    server: RunningServer
    bundle: Bundle
    export: Path
    entries: list[bytes]
    verifier: NoteVerifier

    @property
    def log_key(self) -> str:
        return str(self.verifier)


def _short(euc: object) -> None:
    """Make a certificate valid for 90 days instead of 120."""
    not_after = timestamp_pb2.Timestamp()
    not_after.FromDatetime(euc.validity.not_before.ToDatetime(tzinfo=UTC) + timedelta(days=90))  # type: ignore[attr-defined]
    euc.validity.not_after.CopyFrom(not_after)  # type: ignore[attr-defined]


@pytest.fixture
def recorded(
    server: RunningServer, client: CertificateClient, env: Env, tmp_path: Path
) -> Recorded:
    now = datetime.now(UTC)
    short = samples.certificate(now, number="RPL-2")
    _short(short)
    outcomes = [
        client.submit(env.sign(samples.certificate(now, number="RPL-0"))),
        client.submit(env.sign(samples.certificate(now, number="RPL-1"))),
        client.submit(env.sign(samples.unlicensed_importer(now), signer=env.unlicensed_signer)),
        client.submit(env.sign(short)),
        client.submit(env.sign(samples.military_end_use(now))),
    ]
    assert [o.decision.outcome for o in outcomes] == [1, 1, 2, 1, 2]
    store = server.store
    entries = store.entries(0, 10)
    checkpoint = store.latest_checkpoint()
    assert checkpoint is not None
    assert checkpoint.size == 5
    export = tmp_path / "export"
    write_export(export, entries, checkpoint.note)
    return Recorded(server, load_bundle(env.bundle), export, entries, server.log_signer.verifier)


def _replay(
    rec: Recorded,
    *,
    candidate: Bundle | None = None,
    bundles: bool = True,
    keep_going: bool = False,
    export: Path | None = None,
    workers: int = 0,
    chain_cache: bool = True,
) -> ReplaySummary:
    job = ReplayJob(
        bundles={rec.bundle.digest: rec.bundle.canonical()} if bundles else {},
        candidate=None if candidate is None else candidate.canonical(),
        use_chain_cache=chain_cache,
    )
    summary = ReplaySummary(mode="exact" if candidate is None else "what-if")
    return replay_export(
        export or rec.export,
        rec.verifier,
        job,
        summary,
        keep_going=keep_going,
        workers=workers,
    )


def test_exact_replay_of_the_servers_log_finds_no_difference(recorded: Recorded) -> None:
    for chain_cache in (True, False):
        summary = _replay(recorded, chain_cache=chain_cache)
        assert summary.statuses == {Status.MATCH: 5}, [f.diffs for f in summary.findings]
        assert summary.log["verified"] is True
        assert summary.log["tree_size"] == 5
        assert summary.exit_code() == 0
        assert summary.outcomes_before == {"APPROVED": 3, "REJECTED": 2}


def test_cli_offline_in_worker_processes_and_live_on_the_service(
    recorded: Recorded, env: Env, tmp_path: Path
) -> None:
    offline = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.bundle), "--workers", "2", "--json",
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    body = json.loads(offline.stdout)
    assert body["counts"]["statuses"] == {"MATCH": 5}
    assert body["log"]["verified"] is True

    # The signed bundle the server loaded names the same bundle: its digest is the payload's.
    signed = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.signed_bundle), "--workers", "0", "--json",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["counts"]["statuses"] == {"MATCH": 5}

    address = f"127.0.0.1:{recorded.server.port}"
    live = eucgate("replay", "-s", address, "--insecure", "--log-key", recorded.log_key, "--json")
    assert live.returncode == 0, live.stderr
    body = json.loads(live.stdout)
    assert body["counts"]["statuses"] == {"MATCH": 5}
    assert body["log"]["verified"] is True

    middle = eucgate(
        "replay", "-s", address, "--insecure", "--log-key", recorded.log_key, "--from", "2",
        "--limit", "2", "--json",
    )  # fmt: skip
    assert middle.returncode == 0, middle.stderr
    body = json.loads(middle.stdout)
    assert (body["first_index"], body["next_index"], body["log"]["verified"]) == (2, 4, True)


def _forge(entry: bytes) -> bytes:
    """The entry with its recorded decision changed from APPROVED to REFERRED."""
    body = json.loads(entry)
    decision = json.loads(base64.b64decode(body["decision"]))
    assert decision["outcome"] == "APPROVED"
    decision["outcome"] = "REFERRED"
    body["decision"] = base64.b64encode(canonical_json(decision)).decode()
    return canonical_json(body)


def test_a_forged_decision_is_found(recorded: Recorded, tmp_path: Path) -> None:
    entries = list(recorded.entries)
    entries[1] = _forge(entries[1])
    # An insider who holds the log key re-signs: the log verifies, replay does not.
    resigned = tmp_path / "resigned"
    note = recorded.server.log_signer.sign(len(entries), root_of(map(leaf_hash, entries)))
    write_export(resigned, entries, note)
    summary = _replay(recorded, export=resigned)
    assert summary.log_failure is None
    assert summary.statuses == {Status.MATCH: 4, Status.DIFFERENT: 1}
    (finding,) = summary.findings
    assert (finding.index, finding.reason) == (1, "REPLAY_DECISION_DIFFERS")
    assert finding.diffs == (("outcome", '"REFERRED"', '"APPROVED"'),)
    assert summary.exit_code() == 7

    # Without the key: the checkpoint no longer commits to these entries.
    unsigned = tmp_path / "unsigned"
    write_export(unsigned, entries, recorded.server.store.latest_checkpoint().note)  # type: ignore[union-attr]
    summary = _replay(recorded, export=unsigned)
    assert summary.log_failure is not None
    assert summary.log_failure["reason"] == "LOG_ROOT_MISMATCH"
    assert summary.replayed == 0
    assert summary.exit_code() == 6
    went_on = _replay(recorded, export=unsigned, keep_going=True)
    assert went_on.statuses == {Status.MATCH: 4, Status.DIFFERENT: 1}
    assert went_on.exit_code() == 6


def test_an_entry_the_tiles_do_not_hold_is_reported_with_its_index(
    recorded: Recorded, tmp_path: Path
) -> None:
    bundle_file = recorded.export / "tile/entries/000.p/5"
    lengths = b"".join(len(e).to_bytes(2, "big") + e for e in recorded.entries)
    assert bundle_file.read_bytes() == lengths
    forged = [*recorded.entries[:3], _forge(recorded.entries[3]), recorded.entries[4]]
    bundle_file.write_bytes(b"".join(len(e).to_bytes(2, "big") + e for e in forged))
    stopped = _replay(recorded)
    assert stopped.log_failure == {
        "index": 3,
        "reason": "LOG_ROOT_MISMATCH",
        "message": "entry 3 is not the leaf the tree holds",
    }
    assert stopped.statuses == {Status.MATCH: 3, Status.ERROR: 1}
    assert stopped.interrupted
    assert stopped.next_index == 4
    went_on = _replay(recorded, keep_going=True)
    assert went_on.statuses == {Status.MATCH: 4, Status.ERROR: 1}


def test_a_missing_bundle_stops_or_goes_on(recorded: Recorded) -> None:
    stopped = _replay(recorded, bundles=False)
    assert [(p.index, p.reason) for p in stopped.problems] == [(0, "REPLAY_BUNDLE_MISSING")]
    assert stopped.exit_code() == 8
    assert stopped.interrupted
    went_on = _replay(recorded, bundles=False, keep_going=True)
    assert [p.index for p in went_on.problems] == [0, 1, 2, 3, 4]
    assert went_on.exit_code() == 8


def _candidate(bundle: Bundle, change: dict[str, object]) -> Bundle:
    data = json.loads(bundle.canonical())
    data.update(change)
    return parse_bundle(json.dumps(data), "candidate")


def test_what_if_a_screened_party_is_added(recorded: Recorded) -> None:
    data = json.loads(recorded.bundle.canonical())
    lists = data["screening_lists"]
    control = next(i for i, item in enumerate(lists) if item["kind"] == "control")
    lists[control]["entries"].append(
        {"id": "ECL-IN-900", "name": "Jay-Ushin Limited", "country_code": "IN"}
    )
    candidate = _candidate(recorded.bundle, {"screening_lists": lists})
    summary = _replay(recorded, candidate=candidate)
    assert summary.statuses == {Status.CHANGED: 4, Status.UNCHANGED: 1}
    assert sorted(f.index for f in summary.findings) == list(JAY_USHIN_DECISIONS)
    assert summary.group_lines() == [
        ("PTY-002", "fires", "APPROVED", "REJECTED", 3),
        ("PTY-002", "fires", "REJECTED", "REJECTED", 1),
    ]
    assert summary.outcomes_after == {"REJECTED": 5}
    assert summary.exit_code() == 7
    quotas = summary.to_json()["quota"]["licences"]
    assert [(q["approved_before"], q["approved_after"]) for q in quotas] == [("1500", "0")]


def test_what_if_the_maximum_validity_is_shortened(recorded: Recorded) -> None:
    parameters = json.loads(recorded.bundle.canonical())["parameters"]
    candidate = _candidate(
        recorded.bundle, {"parameters": {**parameters, "max_validity_days": 100}}
    )
    summary = _replay(recorded, candidate=candidate)
    # Every 120-day certificate now breaks DOC-003; the 90-day one (index 3) does not.
    assert sorted(f.index for f in summary.findings) == [0, 1, 2, 4]
    assert summary.group_lines() == [
        ("DOC-003", "fires", "APPROVED", "REJECTED", 2),
        ("DOC-003", "fires", "REJECTED", "REJECTED", 2),
    ]
    assert summary.outcomes_after == {"APPROVED": 1, "REJECTED": 4}
    quotas = summary.to_json()["quota"]["licences"]
    assert [(q["approved_before"], q["approved_after"]) for q in quotas] == [("1500", "500")]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (Debian package chromium); CI installs it")
    return found


def test_the_html_report_renders_in_chromium(recorded: Recorded, env: Env, tmp_path: Path) -> None:
    browser = _chromium()
    data = json.loads(recorded.bundle.canonical())
    data["parameters"]["max_validity_days"] = 100
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps(data))
    report = tmp_path / "report.html"
    done = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.bundle), "--candidate", str(candidate), "--workers", "0",
        "--report", str(report), "--json",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert json.loads(done.stdout)["counts"]["findings"] == 4
    page = report.read_text()
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    dom = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom", report.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr
    shown = dom.stdout
    assert '<b class="" id="fig-decisions-replayed">5</b>' in shown
    assert '<b class="bad" id="fig-would-change">4</b>' in shown
    assert shown.count("<svg") == 2
    assert "<title>DOC-003: 4</title>" in shown
    assert "fires: APPROVED would be REJECTED" in shown
    assert '<td class="n">1500</td>' in shown
    assert '<td class="n">500</td>' in shown
    for index in (0, 1, 2, 4):
        assert f'href="#entry-{index}"' in shown
        assert f'id="entry-{index}"' in shown


def test_cli_replay_advice_and_unverified_ranges(
    recorded: Recorded, env: Env, tmp_path: Path
) -> None:
    """An exported EUCGATE_SERVER does not block an offline replay; a missing bundle's
    advice resumes at the entry it could not replay; changed decisions say why; a live
    replay without a log key says what it did not check."""
    address = f"127.0.0.1:{recorded.server.port}"
    offline = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.bundle), "--workers", "0",
        env={"EUCGATE_SERVER": address},
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    missing = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--workers", "0",
    )  # fmt: skip
    assert missing.returncode == 8
    assert "resume with --from 0" in missing.stdout
    assert "--from 1" not in missing.stdout

    data = json.loads(recorded.bundle.canonical())
    data["parameters"]["max_validity_days"] = 100
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps(data))
    changed = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.bundle), "--candidate", str(candidate), "--workers", "0",
    )  # fmt: skip
    assert changed.returncode == 7, changed.stderr
    assert "DOC-003 fires (REJECT on validity" in changed.stdout

    unkeyed = eucgate("replay", "-s", address, "--insecure")
    assert unkeyed.returncode == 0, unkeyed.stderr
    assert "not verified not verified" not in unkeyed.stdout
    assert "not checked against the log's signed checkpoint" in unkeyed.stdout


LAYOUT_CHECK = """
<script>
addEventListener("load", () => {
  const boxes = [...document.querySelectorAll("svg text, h1, h2, h3")].map((el) => {
    const r = el.getBoundingClientRect();
    return { text: el.textContent, x: r.left, y: r.top, w: r.width, h: r.height,
             svg: el.closest("svg") ? el.closest("svg").id || "svg" : "" };
  });
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.w === 0 || b.w === 0) continue;
    if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
      overlaps.push([a.text, b.text]);
  }
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({ boxes: boxes.length, overlaps });
  document.body.appendChild(out);
});
</script>
"""


def _chromium_dom(browser: str, page: Path, profile: Path) -> str:
    dom = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,2400",
            "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr
    return dom.stdout


def test_the_what_if_report_names_both_bundles_diffs_them_and_lays_out_cleanly(
    recorded: Recorded, env: Env, tmp_path: Path
) -> None:
    """Both bundles by name and digest, the rule-level diff, a chart with a legend whose
    labels never overlap (bounding boxes in Chromium, also over 90 days), one file."""
    browser = _chromium()
    data = json.loads(recorded.bundle.canonical())
    data["name"] = "rare-earths candidate"
    data["parameters"]["max_validity_days"] = 100
    data["rules"] = [r for r in data["rules"] if r["id"] != "RF-005"]
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps(data))
    report = tmp_path / "report.html"
    done = eucgate(
        "replay", "--export", str(recorded.export), "--log-key", recorded.log_key,
        "--bundle", str(env.bundle), "--candidate", str(candidate), "--workers", "0",
        "--report", str(report), "--json",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    body = json.loads(done.stdout)
    bundles = body["bundles"]
    assert bundles["recorded"] == [
        {"digest": recorded.bundle.digest, "name": recorded.bundle.name, "decisions": 5}
    ]
    assert bundles["candidate"]["name"] == "rare-earths candidate"
    paths = {(c["path"], c["kind"]) for c in bundles["diff"]}
    assert ("rules[RF-005]", "removed") in paths
    assert ("parameters.max_validity_days", "changed") in paths
    assert ("name", "changed") in paths

    page = report.read_text()
    assert "<script" not in page
    assert "src=" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for text in (recorded.bundle.name, recorded.bundle.digest, "rare-earths candidate",
                 "rules[RF-005]", "parameters.max_validity_days", "decisions replayed",
                 "decisions that would change"):  # fmt: skip
        assert text in page, text

    # Over 90 days the dates thin out instead of smearing into each other.
    long_doc = dict(body)
    long_doc["by_day"] = [
        {"day": f"2026-{1 + d // 28:02d}-{1 + d % 28:02d}", "decisions": 5 + d % 7,
         "findings": d % 3}
        for d in range(90)
    ]  # fmt: skip
    pages = {"report": page, "ninety-days": render_html(long_doc)}
    for name, html in pages.items():
        checked = tmp_path / f"{name}.html"
        checked.write_text(html.replace("</body>", LAYOUT_CHECK + "</body>"))
        shown = _chromium_dom(browser, checked, tmp_path / f"profile-{name}")
        layout = json.loads(shown.split('<pre id="layout">', 1)[1].split("</pre>", 1)[0])
        assert layout["boxes"] > 10, name
        assert layout["overlaps"] == [], (name, layout["overlaps"])
        assert "decisions replayed" in shown
    dates = pages["ninety-days"].count('class="date"')
    assert 3 <= dates <= 12, dates

    # A screenshot of the real page renders (a headless browser draws it, not blank).
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile-shot'}", "--window-size=1280,2000",
            f"--screenshot={shot}", report.as_uri(),
        ],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 1280
    assert len(png) > 20_000


@pytest.mark.parametrize(("quantity", "unit"), [("600", "kg"), ("0.6", "t"), ("600000", "g")])
def test_what_if_takes_the_candidates_quota(recorded: Recorded, quantity: str, unit: str) -> None:
    """A quota cut to 600 kg: the first approval (500 kg) still fits, no later one does,
    though the record read the old 40 000 kg quota. The same cut written in tonnes or
    grams decides the same: balances are converted into the candidate's unit."""
    data = json.loads(recorded.bundle.canonical())
    for licensee in data["licensed_importers"]:
        if licensee["licence_number"] == "MOFCOM-EL-2025-000417":
            for quota in licensee["quotas"]:
                if quota["control_code"] == "1C904":
                    assert quota["unit"] == "kg"
                    quota["quantity"], quota["unit"] = quantity, unit
    candidate = _candidate(recorded.bundle, {"licensed_importers": data["licensed_importers"]})
    summary = _replay(recorded, candidate=candidate)
    changed = {f.index: f for f in summary.findings}
    # 1 and 3 were approved; 4 (military, rejected) now also breaks the quota.
    assert sorted(changed) == [1, 3, 4]
    for index, finding in changed.items():
        assert finding.replayed is not None
        assert "QTY-001" in [r[0] for r in finding.replayed.reasons]
        assert finding.replayed.outcome == "REJECTED", index
    assert summary.outcomes_after == {"APPROVED": 1, "REJECTED": 4}
    quotas = summary.to_json()["quota"]["licences"]
    assert [(q["approved_before"], q["approved_after"]) for q in quotas] == [("1500", "500")]


def test_resolutions_are_counted_and_their_approvals_take_quota(
    server: RunningServer, client: CertificateClient, env: Env, tmp_path: Path
) -> None:
    """A reviewer's approval is a decision too: a what-if replay counts it, keeps it as
    recorded and counts what it approved against the quota."""
    now = datetime.now(UTC)
    referred_euc = samples.certificate(now, number="RPL-REF")
    referred_euc.intermediaries.add(
        party=certificate_pb2.Party(
            legal_name="Example Magnetics Trading Pvt. Ltd.", country_code="IN"
        ),
        role=certificate_pb2.INTERMEDIARY_ROLE_TRADER,
    )
    referred = client.submit(env.sign(referred_euc)).decision
    assert referred.outcome == decision_pb2.OUTCOME_REFERRED
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        ReviewClient(channel).resolve(referred.decision_id, approve=True, reason="known trader")
    checkpoint = server.store.latest_checkpoint()
    assert checkpoint is not None
    export = tmp_path / "export"
    write_export(export, server.store.entries(0, 10), checkpoint.note)
    bundle = load_bundle(env.bundle)
    summary = replay_export(
        export,
        server.log_signer.verifier,
        ReplayJob(bundles={bundle.digest: bundle.canonical()}, candidate=bundle.canonical()),
        ReplaySummary(mode="what-if"),
    )
    assert summary.resolutions == {"APPROVED": 1}
    assert summary.replayed == 1  # the referral itself; the resolution is kept, not redone
    quotas = summary.to_json()["quota"]["licences"]
    assert [(q["approved_before"], q["approved_after"]) for q in quotas] == [("500", "500")]

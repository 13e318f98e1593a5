"""Folding replay results into what an auditor reads, in O(1) memory per entry.

Counts grow with the number of distinct outcomes, rules, days and licences, never with
the number of entries; the lists of findings and problems keep the first `max_listed`
of each and count the rest. Exit codes follow the worst thing seen (see `exit_code`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eucgate.replay.engine import EntryResult, Status

EXIT_OK = 0
EXIT_LOG_INVALID = 6  # the log failed its check: the entries are not what it commits to
EXIT_DIFFERENCES = 7  # findings: a decision that does not recompute, or would change
EXIT_REPLAY_ERRORS = 8  # entries that could not be replayed (missing bundle, bad entry)

MAX_LISTED = 1000


def rule_changes(result: EntryResult) -> list[tuple[str, str]]:
    """The rules that made a decision change, as (rule id, "fires" | "no longer fires" |
    "fires differently"), in rule-id order; ("-", "outcome only") if no rule did."""
    if result.recorded is None or result.replayed is None:
        return []
    before = Counter(r[0] for r in result.recorded.reasons)
    after = Counter(r[0] for r in result.replayed.reasons)
    before_full = Counter(result.recorded.reasons)
    after_full = Counter(result.replayed.reasons)
    changes = []
    for rule in sorted(set(before) | set(after)):
        if rule not in before:
            changes.append((rule, "fires"))
        elif rule not in after:
            changes.append((rule, "no longer fires"))
        elif {r: n for r, n in before_full.items() if r[0] == rule} != {
            r: n for r, n in after_full.items() if r[0] == rule
        }:
            changes.append((rule, "fires differently"))
    return changes or [("-", "outcome only")]


@dataclass
class ReplaySummary:
    """Everything a replay found, built by `add` in log order."""

    mode: str  # "exact" or "what-if"
    candidate_digest: str = ""
    max_listed: int = MAX_LISTED
    first_index: int | None = None
    next_index: int | None = None  # the index after the last entry seen
    stopped_at_error: bool = False  # the last entry seen could not be replayed
    replayed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    skipped_kinds: Counter[str] = field(default_factory=Counter)
    outcomes_before: Counter[str] = field(default_factory=Counter)
    outcomes_after: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    rule_groups: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    findings_by_day: Counter[str] = field(default_factory=Counter)
    decisions_by_day: Counter[str] = field(default_factory=Counter)
    quota: dict[tuple[str, str, str], list[Decimal]] = field(default_factory=dict)
    findings: list[EntryResult] = field(default_factory=list)
    problems: list[EntryResult] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)
    log_failure: dict[str, Any] | None = None
    quota_note: str = ""
    interrupted: bool = False
    resolutions: Counter[str] = field(default_factory=Counter)  # reviewers' decisions kept
    bundle_digests: Counter[str] = field(default_factory=Counter)  # recorded, per decision
    bundle_names: dict[str, str] = field(default_factory=dict)  # digest -> name, as known
    candidate_name: str = ""
    bundle_diff: list[dict[str, str]] = field(default_factory=list)
    bundle_diff_base: str = ""  # the recorded bundle's digest the diff starts from

    @property
    def finding_count(self) -> int:
        return self.statuses[Status.DIFFERENT] + self.statuses[Status.CHANGED]

    @property
    def problem_count(self) -> int:
        return self.statuses[Status.ERROR]

    def add(self, result: EntryResult) -> None:
        if self.first_index is None:
            self.first_index = result.index
        self.next_index = result.index + 1
        self.stopped_at_error = result.status is Status.ERROR
        self.statuses[result.status] += 1
        if result.reason == "REPLAY_RESOLUTION_KEPT" and result.recorded is not None:
            self._resolution(result)
            return
        if result.status is Status.SKIPPED:
            if result.kind and result.reason == "REPLAY_KIND_SKIPPED":
                self.skipped_kinds[result.kind] += 1
            return
        if result.reason:
            self.reasons[result.reason] += 1
        if result.status is Status.ERROR:
            if len(self.problems) < self.max_listed:
                self.problems.append(result)
            return
        self.replayed += 1
        if result.bundle_digest:
            self.bundle_digests[result.bundle_digest] += 1
        day = result.decided_at[:10]
        self.decisions_by_day[day] += 1
        before = result.recorded.outcome if result.recorded else "APPROVED"
        after = result.replayed.outcome if result.replayed else before
        self.outcomes_before[before] += 1
        self.outcomes_after[after] += 1
        if result.status in (Status.DIFFERENT, Status.CHANGED):
            self.findings_by_day[day] += 1
            self.transitions[(before, after)] += 1
            if len(self.findings) < self.max_listed:
                self.findings.append(result)
            if result.status is Status.CHANGED:
                for rule, change in rule_changes(result):
                    self.rule_groups[(rule, change, before, after)] += 1
        for side, brief in ((0, result.recorded), (1, result.replayed)):
            if brief is None or self.mode != "what-if":
                continue
            for licence, code, unit, quantity in brief.taken:
                totals = self.quota.setdefault((licence, code, unit), [Decimal(0), Decimal(0)])
                totals[side] += Decimal(quantity)

    def _resolution(self, result: EntryResult) -> None:
        """A reviewer's decision: counted, its approval taking quota on both sides."""
        assert result.recorded is not None
        self.resolutions[result.recorded.outcome] += 1
        if self.mode != "what-if":
            return
        for licence, code, unit, quantity in result.recorded.taken:
            totals = self.quota.setdefault((licence, code, unit), [Decimal(0), Decimal(0)])
            totals[0] += Decimal(quantity)
            totals[1] += Decimal(quantity)

    @property
    def main_bundle(self) -> str:
        """The recorded bundle most decisions of the range were made under ("" if none)."""
        top = self.bundle_digests.most_common(1)
        return top[0][0] if top else ""

    @property
    def resume_index(self) -> int | None:
        """Where a stopped replay resumes: at the entry that could not be replayed (once
        its cause is fixed, e.g. the missing bundle given), else after the last one."""
        if self.next_index is None:
            return None
        return self.next_index - 1 if self.stopped_at_error else self.next_index

    def fail_log(self, index: int, reason: str, message: str) -> None:
        """Record that the log failed its check (the replay stops or goes on unverified)."""
        if self.log_failure is None:
            self.log_failure = {"index": index, "reason": reason, "message": message}

    def exit_code(self) -> int:
        """6 the log failed its check, 8 entries could not be replayed, 7 differences
        (findings) and nothing worse, 0 every decision replayed as recorded (or, what-if,
        none would change)."""
        if self.log_failure is not None:
            return EXIT_LOG_INVALID
        if self.problem_count:
            return EXIT_REPLAY_ERRORS
        if self.finding_count:
            return EXIT_DIFFERENCES
        return EXIT_OK

    def group_lines(self) -> list[tuple[str, str, str, str, int]]:
        """Rule groups, largest first: (rule, change, before, after, count)."""
        return [
            (*key, n) for key, n in sorted(self.rule_groups.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "candidate_digest": self.candidate_digest,
            "first_index": self.first_index,
            "next_index": self.next_index,
            "resume_index": self.resume_index if self.interrupted else None,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code(),
            "log": {**self.log, "failure": self.log_failure},
            "bundles": {
                "recorded": [
                    {"digest": d, "name": self.bundle_names.get(d, ""), "decisions": n}
                    for d, n in self.bundle_digests.most_common()
                ],
                "candidate": None
                if not self.candidate_digest
                else {"digest": self.candidate_digest, "name": self.candidate_name},
                "diff_base": self.bundle_diff_base,
                "diff": self.bundle_diff,
            },
            "resolutions": dict(sorted(self.resolutions.items())),
            "counts": {
                "replayed": self.replayed,
                "statuses": dict(sorted(self.statuses.items())),
                "reasons": dict(sorted(self.reasons.items())),
                "skipped_kinds": dict(sorted(self.skipped_kinds.items())),
                "findings": self.finding_count,
                "problems": self.problem_count,
            },
            "outcomes": {
                "before": dict(sorted(self.outcomes_before.items())),
                "after": dict(sorted(self.outcomes_after.items())),
                "transitions": [
                    {"before": b, "after": a, "count": n}
                    for (b, a), n in sorted(self.transitions.items())
                ],
            },
            "rule_groups": [
                {"rule_id": r, "change": c, "before": b, "after": a, "count": n}
                for r, c, b, a, n in self.group_lines()
            ],
            "by_day": [
                {"day": d, "decisions": n, "findings": self.findings_by_day[d]}
                for d, n in sorted(self.decisions_by_day.items())
            ],
            "quota": {
                "note": self.quota_note,
                "licences": [
                    {
                        "licence_number": lic,
                        "control_code": code,
                        "unit": unit,
                        "approved_before": format(before, "f"),
                        "approved_after": format(after, "f"),
                        "change": format(after - before, "f"),
                    }
                    for (lic, code, unit), (before, after) in sorted(self.quota.items())
                ],
            },
            "findings": [r.to_json() for r in self.findings],
            "findings_listed": len(self.findings),
            "problems": [r.to_json() for r in self.problems],
            "problems_listed": len(self.problems),
        }

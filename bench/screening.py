"""Party screening: match quality on two labelled sets, and speed against 100k entries.

    python -m bench.screening --quality [--record]
    python -m bench.screening [--entries 100000] [--repeat 200] [--record]

`--quality` scores every pair of tests/data/screening-external.csv (real list names and
their aliases in many scripts: see screening-external.md) and of the project's own
tests/data/screening-pairs.csv with the screener's `name_score` and, in the same run,
with a plain rapidfuzz baseline (`token_sort_ratio` with rapidfuzz's default processor,
no normalisation of ours). Per set and per script it reports flag recall (true matches
at or above refer_at), reject precision (true matches among the pairs at or above
reject_at) and officer workload (flag precision: true matches among the flagged), at
the thresholds `ScreeningThresholds` ships, and checks the targets. It also times the
two transliterators the project compared (anyascii, chosen; rigour's ascii_text).

Without it, one realistic certificate (every party with a parent and a 51 % owner: 15
names) is screened against the sample control list plus `--entries` synthetic entries
(deterministic, seed 2025), through the index and by exhaustive scan, and in the same run
one Ed25519 signature verification is timed: the ratio is what to compare across
machines. `--record` appends the figures and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import random
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import anyascii
import rapidfuzz
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.core.model import Certificate, Owner, Party
from eucgate.core.names import comparable_name
from eucgate.core.screening import (
    ListEntry,
    ListKind,
    Screener,
    ScreeningList,
    ScreeningThresholds,
    name_score,
    names_to_screen,
)
from eucgate.policyfiles import load_screening_list
from rapidfuzz import fuzz, utils
from rigour.text.translit import ascii_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
PAIRS = ROOT / "tests" / "data" / "screening-pairs.csv"
EXTERNAL = ROOT / "tests" / "data" / "screening-external.csv"
LISTS = ROOT / "service" / "eucgate" / "policies" / "lists"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SEED = 2025

# Issue 12's targets.
TARGET_REJECT_PRECISION = 0.98
TARGET_FLAG_RECALL_LATIN = 0.95
TARGET_FLAG_RECALL_CROSS = 0.85

# --- the labelled pairs ----------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    query: str
    listed: str
    label: str  # match | related | distinct
    kind: str
    script: str = "Latin"  # the script of the pair's non-Latin name, else Latin


def script_of(*names: str) -> str:
    """The first non-Latin script among the names' letters, else "Latin"."""
    for name in names:
        for ch in name:
            if ch.isalpha() and not ch.isascii():
                script = unicodedata.name(ch, "UNKNOWN").split()[0]
                if script != "LATIN":
                    return script.capitalize()
    return "Latin"


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    """The labelled pairs; lines starting with '#' are comments."""
    text = "".join(
        line for line in path.read_text(encoding="utf-8").splitlines(True) if line[:1] != "#"
    )
    return [
        Pair(
            r["query"],
            r["listed"],
            r["label"],
            r["kind"],
            r.get("script") or script_of(r["query"], r["listed"]),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


@dataclass(frozen=True)
class Quality:
    """Figures at one (refer_at, reject_at): hit = REJECT on a control list, flag = REFER
    or REJECT. Precision and recall count `match` pairs as the positives."""

    hit_precision: float
    hit_recall: float
    flag_precision: float
    flag_recall: float
    related_hit: float  # share of related pairs that would REJECT (should be 0)
    related_flag: float
    distinct_hit: float
    distinct_flag: float


def quality(scores: Sequence[tuple[float, str]], refer_at: float, reject_at: float) -> Quality:
    """Precision and recall of (score, label) pairs at the two thresholds."""

    def share(label: str, floor: float) -> float:
        of = [s for s, lab in scores if lab == label]
        return sum(s >= floor for s in of) / len(of) if of else 0.0

    def precision(floor: float) -> float:
        above = [lab for s, lab in scores if s >= floor]
        return sum(lab == "match" for lab in above) / len(above) if above else 1.0

    return Quality(
        hit_precision=precision(reject_at),
        hit_recall=share("match", reject_at),
        flag_precision=precision(refer_at),
        flag_recall=share("match", refer_at),
        related_hit=share("related", reject_at),
        related_flag=share("related", refer_at),
        distinct_hit=share("distinct", reject_at),
        distinct_flag=share("distinct", refer_at),
    )


def baseline(a: str, b: str) -> float:
    """Plain rapidfuzz: token_sort_ratio with its default processor, nothing of ours."""
    return float(fuzz.token_sort_ratio(a, b, processor=utils.default_process)) / 100


SCORERS: dict[str, Callable[[str, str], float]] = {
    "name_score (chosen)": name_score,
    "rapidfuzz token_sort_ratio (baseline)": baseline,
}


def _groups(pairs: Sequence[Pair]) -> list[tuple[str, list[Pair]]]:
    cross = [p for p in pairs if p.script != "Latin"]
    groups = [("all", list(pairs)), ("Latin", [p for p in pairs if p.script == "Latin"])]
    if cross:
        groups.append(("cross-script", cross))
        for script in sorted({p.script for p in cross}):
            groups.append((f"  {script}", [p for p in cross if p.script == script]))
    return groups


def _empty_form(pair: Pair) -> bool:
    return comparable_name(pair.query).blank or comparable_name(pair.listed).blank


def set_report(
    title: str, pairs: Sequence[Pair], thresholds: ScreeningThresholds
) -> tuple[list[str], dict[str, Quality]]:
    """One table per set: each group (all, Latin, cross-script, each script) by scorer."""
    lines = [
        f"### {title}",
        "",
        "| group | pairs (match) | scorer | flag recall | reject precision (rejected) "
        "| flag precision (flagged) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    chosen: dict[str, Quality] = {}
    scored = {
        name: {p: scorer(p.query, p.listed) for p in pairs} for name, scorer in SCORERS.items()
    }
    for group, members in _groups(pairs):
        matches = sum(p.label == "match" for p in members)
        for name, scores in scored.items():
            q = quality(
                [(scores[p], p.label) for p in members], thresholds.refer_at, thresholds.reject_at
            )
            rejected = sum(scores[p] >= thresholds.reject_at for p in members)
            flagged = sum(scores[p] >= thresholds.refer_at for p in members)
            lines.append(
                f"| {group} | {len(members)} ({matches}) | {name} | {q.flag_recall:.3f} "
                f"| {q.hit_precision:.3f} ({rejected}) | {q.flag_precision:.3f} ({flagged}) |"
            )
            if name == "name_score (chosen)":
                chosen[group.strip()] = q
    empty = [p for p in pairs if _empty_form(p)]
    matched = sum(name_score(p.query, p.listed) >= thresholds.refer_at for p in empty)
    lines += ["", f"Pairs with an empty comparable form: {len(empty)}; flagged: {matched}."]
    return lines, chosen


def transliteration_report(pairs: Sequence[Pair], repeat: int = 20) -> list[str]:
    """Time per name of the two transliterators compared, over the set's non-Latin names."""
    names = sorted(
        {n for p in pairs for n in (p.query, p.listed) if not n.isascii()}
    )  # fmt: skip
    ascii_text(names[0])  # ICU builds its transliterator on first use

    def per_name(fn: Callable[[str], str]) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            for name in names:
                fn(name)
        return (time.perf_counter() - start) / (repeat * len(names))

    fast, icu = per_name(anyascii.anyascii), per_name(ascii_text)
    return [
        f"Transliteration of the {len(names)} non-Latin names: anyascii "
        f"{fast * 1e6:.1f} µs a name, rigour ascii_text (Rust for six scripts, ICU for the "
        f"rest) {icu * 1e6:.1f} µs a name ({icu / fast:.0f}x)."
    ]


def quality_report(thresholds: ScreeningThresholds) -> list[str]:
    external = load_pairs(EXTERNAL)
    own = load_pairs(PAIRS)
    lines = [
        f"Thresholds: refer_at {thresholds.refer_at}, reject_at {thresholds.reject_at} "
        "(the shipped defaults, also the sample bundle's). Targets: reject precision >= "
        f"{TARGET_REJECT_PRECISION}, flag recall >= {TARGET_FLAG_RECALL_LATIN} on Latin-script "
        f"and >= {TARGET_FLAG_RECALL_CROSS} on cross-script true matches, no match between "
        "empty comparable forms.",
        "",
    ]
    verdicts = []
    for title, pairs in (
        ("External set (tests/data/screening-external.csv)", external),
        ("The project's own pairs (tests/data/screening-pairs.csv)", own),
    ):
        table, chosen = set_report(title, pairs, thresholds)
        lines += [*table, ""]
        for group, target in (
            ("Latin", TARGET_FLAG_RECALL_LATIN),
            ("cross-script", TARGET_FLAG_RECALL_CROSS),
        ):
            if group in chosen:
                q = chosen[group]
                verdicts.append(
                    f"- {title.split(' (')[0]}, {group}: flag recall {q.flag_recall:.3f} "
                    f"(target {target}), reject precision {q.hit_precision:.3f} "
                    f"(target {TARGET_REJECT_PRECISION}): "
                    + (
                        "met"
                        if q.flag_recall >= target and q.hit_precision >= TARGET_REJECT_PRECISION
                        else "NOT met"
                    )
                )
    lines += ["Targets (name_score):", "", *verdicts, "", *transliteration_report(external)]
    misses = [
        (name_score(p.query, p.listed), p)
        for p in external
        if (p.label == "match") != (name_score(p.query, p.listed) >= thresholds.refer_at)
    ]
    if misses:
        lines += ["", "External pairs name_score gets wrong at refer_at:", ""]
        lines += [
            f"- {p.label} ({p.script}) {s:.3f}: {p.query!r} ~ {p.listed!r}"
            for s, p in sorted(misses, key=lambda sp: (sp[1].label, sp[1].script, sp[0]))
        ]
    return lines


# --- synthetic lists -----------------------------------------------------------------

_SYLLABLES = (
    "an", "bao", "chen", "da", "dong", "fa", "guo", "hai", "hong", "hua", "jia", "jin", "kai",
    "kang", "li", "lian", "long", "ming", "nan", "peng", "qi", "rong", "sheng", "tai", "tian",
    "wei", "xin", "xing", "yang", "yu", "zhen", "zhong", "ar", "bel", "cor", "dan", "el", "fer",
    "gal", "hel", "in", "kor", "lum", "mar", "nor", "or", "pax", "quin", "ros", "sol", "tor",
    "ul", "ver", "wes", "zan",
)  # fmt: skip
_COMMON = (
    "technology", "systems", "industries", "international", "electronics", "aerospace",
    "defense", "group", "trading", "materials", "precision", "engineering", "research",
    "global", "advanced", "dynamics", "metals", "magnetics", "optics", "components", "services",
    "holdings", "manufacturing", "energy", "solutions",
)  # fmt: skip
_FORMS = ("Co., Ltd.", "Inc.", "LLC", "Limited", "Pvt Ltd", "GmbH", "Corporation", "S.A.", "")


def _coined(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def synthetic_entries(count: int, seed: int = SEED) -> list[ListEntry]:
    """`count` list entries with realistic shape: one or two coined words, one to three
    common words, a legal form, and an alias for one entry in five. Deterministic."""
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        words = [_coined(rng) for _ in range(rng.choice((1, 1, 2)))]
        words += rng.sample(_COMMON, rng.randint(1, 3))
        name = " ".join(w.capitalize() for w in words) + " " + rng.choice(_FORMS)
        aliases = (" ".join(words[:2]).upper(),) if rng.random() < 0.2 else ()
        entries.append(ListEntry(id=f"SYN-{i:06d}", name=name.strip(), aliases=aliases))
    return entries


def synthetic_list(count: int, seed: int = SEED) -> ScreeningList:
    return ScreeningList(
        id="synthetic",
        name="Synthetic entries",
        kind=ListKind.WATCH,
        source="bench.screening (synthetic)",
        list_date=date(2025, 1, 1),
        entries=tuple(synthetic_entries(count, seed)),
    )


# --- the certificate -------------------------------------------------------------------


def realistic_certificate() -> Certificate:
    """The tests' valid Jay-Ushin certificate shape, every party with a parent and a
    majority owner, plus a freight forwarder: 15 names to screen."""
    from eucgate.core.model import Intermediary, IntermediaryRole  # noqa: PLC0415

    from tests.factories import exporter, jay_ushin, valid_certificate  # noqa: PLC0415

    def owned(party: Party, parent: str, owner: str) -> Party:
        return party.model_copy(
            update={
                "parent_company": parent,
                "owners": (Owner(legal_name=owner, share_percent=Decimal(51)),),
            }
        )

    forwarder = Party(legal_name="Skyline Freight Forwarders Pvt Ltd", country_code="SG")
    return valid_certificate(
        exporter=owned(
            exporter(), "Baotou Tianhe Holdings", "Inner Mongolia Baotou Rare Earth Group"
        ),
        importer=owned(jay_ushin(), "Jay-Ushin Holdings", "Minda Industries Limited"),
        consignee=owned(jay_ushin(), "Jay-Ushin Holdings", "Minda Industries Limited"),
        intermediaries=(
            Intermediary(
                party=owned(forwarder, "Skyline Logistics Group", "Skyline Holdings Pte Ltd"),
                role=IntermediaryRole.FREIGHT_FORWARDER,
            ),
        ),
        end_user=owned(jay_ushin(), "Jay-Ushin Holdings", "Minda Industries Limited"),
    )


# --- timing ------------------------------------------------------------------------


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ed25519_verify_seconds(repeat: int = 2000) -> float:
    """Median time of one Ed25519 verification of a 3 KiB message."""
    key = Ed25519PrivateKey.generate()
    message = bytes(3072)
    signature = key.sign(message)
    public = key.public_key()
    return _median_seconds(lambda: public.verify(signature, message), repeat)


def speed_report(entries: int, repeat: int) -> list[str]:
    lists = [load_screening_list(LISTS / "control-list-sample.yaml"), synthetic_list(entries)]
    start = time.perf_counter()
    screener = Screener(lists, ScreeningThresholds())
    build = time.perf_counter() - start
    certificate = realistic_certificate()
    names = names_to_screen(certificate)

    def cold() -> object:
        screener.forget()  # no answer remembered from the last round
        return screener.screen_certificate(certificate, NOW)

    indexed = _median_seconds(cold, repeat)
    warm = _median_seconds(lambda: screener.screen_certificate(certificate, NOW), repeat)
    brute = _median_seconds(
        lambda: screener.screen_names(names, NOW, exhaustive=True), max(3, repeat // 50)
    )
    by_index = screener.screen_certificate(certificate, NOW)
    by_scan = screener.screen_names(names, NOW, exhaustive=True)
    candidates = sum(len(screener.candidates(n.name)) for n in names)
    sample = Screener(
        [load_screening_list(LISTS / f"{kind}-list-sample.yaml") for kind in ("control", "watch")],
        ScreeningThresholds(),
    )

    def sample_cold() -> object:
        sample.forget()
        return sample.screen_certificate(certificate, NOW)

    on_sample = _median_seconds(sample_cold, repeat)
    verify = ed25519_verify_seconds()
    return [
        f"Index: {screener.size} names and aliases ({entries} synthetic entries plus the "
        f"sample control list), built in {build:.2f} s",
        f"Certificate: {len(names)} names screened; {candidates} candidates scored in all "
        f"({candidates / len(names):.0f} per name); matches at or above refer_at: "
        f"{len(by_index)} through the index, {len(by_scan)} by exhaustive scan, "
        + ("the same ones" if by_index == by_scan else "NOT the same ones"),
        "",
        "| what | median | / Ed25519 verify |",
        "| --- | ---: | ---: |",
        f"| Ed25519 verify (3 KiB) | {verify * 1e6:.1f} µs | 1 |",
        f"| screen the certificate, sample lists only (the sample bundle), first time "
        f"| {on_sample * 1e3:.3f} ms | {on_sample / verify:.1f} |",
        f"| screen the certificate, index, first time "
        f"| {indexed * 1e3:.3f} ms | {indexed / verify:.1f} |",
        f"| the same parties again (answers remembered by name and day) "
        f"| {warm * 1e3:.3f} ms | {warm / verify:.2f} |",
        f"| screen the certificate, exhaustive | {brute * 1e3:.1f} ms | {brute / verify:.0f} |",
    ]


def _record(title: str, lines: Sequence[str], argv: Sequence[str]) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python -m bench.screening", *argv])
    machine = (
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"rapidfuzz {rapidfuzz.__version__}, rigour {version('rigour')}, "
        f"anyascii {version('anyascii')}"
    )
    block = [f"## {title}, {when}", "", f"Command: `{command}`  ", f"Machine: {machine}", ""]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n" + "\n".join([*block, *lines]) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quality", action="store_true", help="precision and recall")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(args_list)
    if args.quality:
        title = "Screening quality"
        lines = quality_report(ScreeningThresholds())
    else:
        title = "Screening speed"
        lines = speed_report(args.entries, args.repeat)
    print("\n".join(lines))
    if args.record:
        _record(title, lines, [a for a in args_list if a != "--record"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

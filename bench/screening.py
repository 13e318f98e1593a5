"""Party screening: match quality on the labelled pairs, and speed against 100k entries.

    python -m bench.screening --quality [--record]
    python -m bench.screening [--entries 100000] [--repeat 200] [--record]

`--quality` scores every pair of tests/data/screening-pairs.csv with the screener's
`name_score` and, for comparison, with plain rapidfuzz scorers over the same normalised
names, and reports precision and recall at the thresholds `ScreeningThresholds` ships.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import rapidfuzz
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.core.model import Certificate, Owner, Party
from eucgate.core.screening import (
    ListEntry,
    ListKind,
    Screener,
    ScreeningList,
    ScreeningThresholds,
    load_screening_list,
    name_score,
    names_to_screen,
    normalize_party_name,
)
from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
PAIRS = ROOT / "tests" / "data" / "screening-pairs.csv"
LISTS = ROOT / "service" / "eucgate" / "policies" / "lists"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SEED = 2025

# --- the labelled pairs ----------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    query: str
    listed: str
    label: str  # match | related | distinct
    kind: str


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    """The labelled pairs; lines starting with '#' are comments."""
    text = "".join(
        line for line in path.read_text(encoding="utf-8").splitlines(True) if line[:1] != "#"
    )
    return [
        Pair(r["query"], r["listed"], r["label"], r["kind"])
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


def _normalised(scorer: Callable[..., float]) -> Callable[[str, str], float]:
    def score(a: str, b: str) -> float:
        return float(scorer(normalize_party_name(a), normalize_party_name(b), processor=None)) / 100

    return score


SCORERS: dict[str, Callable[[str, str], float]] = {
    "name_score (chosen)": name_score,
    "token_sort_ratio": _normalised(fuzz.token_sort_ratio),
    "token_set_ratio": _normalised(fuzz.token_set_ratio),
    "WRatio": _normalised(fuzz.WRatio),
    "ratio": _normalised(fuzz.ratio),
}


def quality_report(pairs: Sequence[Pair], thresholds: ScreeningThresholds) -> list[str]:
    counts = {lab: sum(p.label == lab for p in pairs) for lab in ("match", "related", "distinct")}
    lines = [
        f"Pairs: {len(pairs)} ({counts['match']} match, {counts['related']} related, "
        f"{counts['distinct']} distinct); refer_at {thresholds.refer_at}, "
        f"reject_at {thresholds.reject_at}",
        "",
        "| scorer | hit precision | hit recall | flag precision | flag recall "
        "| related hit | related flag | distinct hit | distinct flag |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, scorer in SCORERS.items():
        scores = [(scorer(p.query, p.listed), p.label) for p in pairs]
        q = quality(scores, thresholds.refer_at, thresholds.reject_at)
        lines.append(
            f"| {name} | {q.hit_precision:.3f} | {q.hit_recall:.3f} | {q.flag_precision:.3f} "
            f"| {q.flag_recall:.3f} | {q.related_hit:.3f} | {q.related_flag:.3f} "
            f"| {q.distinct_hit:.3f} | {q.distinct_flag:.3f} |"
        )
    misses = [
        (name_score(p.query, p.listed), p)
        for p in pairs
        if (p.label == "match" and name_score(p.query, p.listed) < thresholds.reject_at)
        or (p.label != "match" and name_score(p.query, p.listed) >= thresholds.reject_at)
    ]
    if misses:
        lines += ["", "Pairs name_score gets wrong at reject_at (a match that only refers, or"]
        lines += ["a non-match that would reject):", ""]
        lines += [f"- {p.label} ({p.kind}) {s:.3f}: {p.query!r} ~ {p.listed!r}" for s, p in misses]
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
    indexed = _median_seconds(lambda: screener.screen_certificate(certificate, NOW), repeat)
    brute = _median_seconds(
        lambda: screener.screen_names(names, NOW, exhaustive=True), max(3, repeat // 50)
    )
    by_index = screener.screen_certificate(certificate, NOW)
    by_scan = screener.screen_names(names, NOW, exhaustive=True)
    candidates = sum(len(screener.candidates(n.name)) for n in names)
    verify = ed25519_verify_seconds()
    return [
        f"Index: {screener.size} names and aliases ({entries} synthetic entries plus the "
        f"sample control list), built in {build:.2f} s",
        f"Certificate: {len(names)} names screened; {candidates} candidates scored in all "
        f"({candidates / len(names):.0f} per name); grey-zone results: {len(by_index)} "
        f"through the index, {len(by_scan)} by exhaustive scan (the scan's extra ones share "
        "only a common word with the name, e.g. 'Minda Industries' ~ 'Tianda Industries')",
        "",
        "| what | median | / Ed25519 verify |",
        "| --- | ---: | ---: |",
        f"| Ed25519 verify (3 KiB) | {verify * 1e6:.1f} µs | 1 |",
        f"| screen the certificate, index | {indexed * 1e3:.3f} ms | {indexed / verify:.1f} |",
        f"| screen the certificate, exhaustive | {brute * 1e3:.1f} ms | {brute / verify:.0f} |",
    ]


def _record(title: str, lines: Sequence[str], argv: Sequence[str]) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python -m bench.screening", *argv])
    machine = (
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"rapidfuzz {rapidfuzz.__version__}"
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
        lines = quality_report(load_pairs(), ScreeningThresholds())
    else:
        title = "Screening speed"
        lines = speed_report(args.entries, args.repeat)
    print("\n".join(lines))
    if args.record:
        _record(title, lines, [a for a in args_list if a != "--record"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

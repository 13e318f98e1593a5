"""Party screening: normalisation, outcomes by list kind, effective windows, the fields
screened, match quality on the labelled pairs, and the index against an exhaustive scan."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import eucgate
import pytest
from eucgate.core.decision import RuleOutcome
from eucgate.core.model import Intermediary, Owner, Party
from eucgate.core.screening import (
    ListEntry,
    ListKind,
    NameToScreen,
    Screener,
    ScreeningList,
    ScreeningThresholds,
    load_screening_list,
    name_score,
    names_to_screen,
    normalize_party_name,
    parse_screening_list,
)
from eucgate.errors import BundleError

from bench.screening import PAIRS, load_pairs, quality, synthetic_entries
from tests.factories import NOW, jay_ushin, valid_certificate

LISTS = Path(eucgate.__file__).parent / "policies" / "lists"
THRESHOLDS = ScreeningThresholds()


def _list(kind: ListKind, *entries: ListEntry, list_id: str = "l1") -> ScreeningList:
    return ScreeningList(
        id=list_id,
        name=f"{kind.value} list",
        kind=kind,
        source="Test Announcement No. 1",
        list_date=date(2025, 1, 1),
        entries=entries,
    )


def _entry(entry_id: str, name: str, **fields: object) -> ListEntry:
    return ListEntry.model_validate({"id": entry_id, "name": name, **fields})


# --- normalisation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("Hitachi Astemo India Pvt. Ltd.", "hitachi astemo india"),
        ("Hitachi Astemo India Private Limited", "hitachi astemo india"),
        ("Baotou Tianhe Magnetics Technology Co., Ltd.", "baotou tianhe magnetics technology"),
        ("The Boeing Company", "boeing"),
        ("Müller Präzisionstechnik GmbH", "muller prazisionstechnik"),
        ("Kestrel Dynamics L.L.C.", "kestrel dynamics"),
        ("Sterling & Vance Tech", "sterling vance technology"),
        ("Xi’an Hangtian Electronic", "xian hangtian electronics"),
        ("Ａｎｄｕｒｉｌ Ｉｎｄｕｓｔｒｉｅｓ", "anduril industries"),
        ("Lосkhееd Маrtіn", "lockheed martin"),  # Cyrillic о, с, е, М, а, і
        ("Αmerican Ρhotonics", "american photonics"),  # Greek Α, Ρ
        ("Рособоронэкспорт", "rosoboroneksport"),  # all Cyrillic: transliterated
        ("National Chung-Shan Institute", "national zhong shan institute"),
        ("  L-3   Harris  ", "l3 harris"),
        ("Limited", "limited"),  # nothing but a legal form: kept
    ],
)
def test_normalize_party_name(written: str, normalised: str) -> None:
    assert normalize_party_name(written) == normalised


def test_name_score_ignores_order_and_spacing_but_not_extra_words() -> None:
    assert name_score("Martin Lockheed Corp", "Lockheed Martin") == 1.0
    assert name_score("Zhong Xing Avionics", "Zhongxing Avionics") == 1.0
    assert 0.80 <= name_score("Lockheed Martin Space", "Lockheed Martin") < 0.95
    assert name_score("Novotech", "General Dynamics") < 0.5


# --- outcomes -------------------------------------------------------------------------


def test_control_list_hit_rejects_and_records_entry_list_source_and_score() -> None:
    screener = Screener(
        [_list(ListKind.CONTROL, _entry("C-1", "Anduril", aliases=["Anduril Industries"]))],
        THRESHOLDS,
    )
    [match] = screener.screen_names(
        [NameToScreen("end_user.legal_name", "ANDURIL INDUSTRIES, INC.")], NOW
    )
    assert match.outcome is RuleOutcome.REJECT
    assert (match.entry_id, match.entry_name, match.matched_name) == (
        "C-1",
        "Anduril",
        "Anduril Industries",
    )
    assert (match.list_id, match.list_kind, match.source) == (
        "l1",
        ListKind.CONTROL,
        "Test Announcement No. 1",
    )
    assert match.listed_on == date(2025, 1, 1)
    assert match.score == 1.0
    assert match.field == "end_user.legal_name"


def test_control_list_grey_zone_refers() -> None:
    screener = Screener([_list(ListKind.CONTROL, _entry("C-1", "Lockheed Martin"))], THRESHOLDS)
    [match] = screener.screen_names(
        [NameToScreen("importer.legal_name", "Lockheed Martin Space")], NOW
    )
    assert match.outcome is RuleOutcome.REFER
    assert THRESHOLDS.refer_at <= match.score < THRESHOLDS.reject_at


def test_watch_list_match_refers_even_when_exact() -> None:
    screener = Screener(
        [_list(ListKind.WATCH, _entry("W-1", "Example Magnetics Trading"))], THRESHOLDS
    )
    [match] = screener.screen_names(
        [NameToScreen("end_user.legal_name", "Example Magnetics Trading Pvt Ltd")], NOW
    )
    assert (match.outcome, match.score) == (RuleOutcome.REFER, 1.0)


def test_below_the_grey_zone_nothing_is_reported() -> None:
    screener = Screener([_list(ListKind.CONTROL, _entry("C-1", "General Dynamics"))], THRESHOLDS)
    assert screener.screen_names([NameToScreen("end_user.legal_name", "General Motors")], NOW) == ()


def test_thresholds_come_from_parameters() -> None:
    entries = _list(ListKind.CONTROL, _entry("C-1", "Lockheed Martin"))
    strict = Screener([entries], ScreeningThresholds(refer_at=0.7, reject_at=0.8))
    [match] = strict.screen_names([NameToScreen("f", "Lockheed Martin Space")], NOW)
    assert match.outcome is RuleOutcome.REJECT
    lax = Screener([entries], ScreeningThresholds(refer_at=0.9, reject_at=0.99))
    assert lax.screen_names([NameToScreen("f", "Lockheed Martin Space")], NOW) == ()


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="refer_at must not be above reject_at"):
        ScreeningThresholds(refer_at=0.95, reject_at=0.9)


def test_best_name_or_alias_per_entry_and_at_most_max_matches() -> None:
    entries = [_entry(f"C-{i}", f"Kestrel Dynamics {suffix}") for i, suffix in enumerate("ABCDEFG")]
    screener = Screener(
        [_list(ListKind.CONTROL, *entries)], ScreeningThresholds(max_matches_per_name=3)
    )
    matches = screener.screen_names([NameToScreen("f", "Kestrel Dynamics")], NOW)
    assert [m.entry_id for m in matches] == ["C-0", "C-1", "C-2"]  # ties break by list order


# --- effective windows ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "on", "listed"),
    [
        ({}, datetime(2024, 12, 31, 23, 59, tzinfo=UTC), False),  # before listed_on
        ({}, datetime(2025, 1, 1, tzinfo=UTC), True),
        ({"effective_from": "2026-11-10"}, datetime(2026, 11, 9, 23, 0, tzinfo=UTC), False),
        ({"effective_from": "2026-11-10"}, datetime(2026, 11, 10, tzinfo=UTC), True),
        ({"effective_until": "2026-03-31"}, datetime(2026, 3, 31, 23, 59, tzinfo=UTC), True),
        ({"effective_until": "2026-03-31"}, datetime(2026, 4, 1, tzinfo=UTC), False),
    ],
)
def test_entries_apply_only_inside_their_window(
    window: dict[str, str], on: datetime, listed: bool
) -> None:
    screener = Screener([_list(ListKind.CONTROL, _entry("C-1", "Novotech", **window))], THRESHOLDS)
    assert bool(screener.screen_names([NameToScreen("f", "Novotech")], on)) is listed


def test_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="must not be before effective_from"):
        _entry("C-1", "Novotech", effective_from="2026-01-01", effective_until="2025-12-31")


# --- what is screened -----------------------------------------------------------------


def test_every_party_parent_and_majority_owner_is_screened() -> None:
    owned = jay_ushin(
        parent_company="Novotech",
        owners=(
            Owner(legal_name="Small Holder Ltd", share_percent=Decimal("49.9")),
            Owner(legal_name="American Photonics Inc.", share_percent=Decimal(50)),
        ),
    )
    forwarder = Party(legal_name="Skyline Freight", country_code="SG")
    cert = valid_certificate(end_user=owned, intermediaries=(Intermediary(party=forwarder),))
    fields = [n.field for n in names_to_screen(cert)]
    assert fields == [
        "exporter.legal_name",
        "importer.legal_name",
        "intermediaries[0].party.legal_name",
        "end_user.legal_name",
        "end_user.parent_company",
        "end_user.owners[1].legal_name",
    ]
    screener = Screener([load_screening_list(LISTS / "control-list-sample.yaml")], THRESHOLDS)
    matches = screener.screen_certificate(cert, NOW)
    assert [(m.field, m.entry_id, m.outcome) for m in matches] == [
        ("end_user.parent_company", "ECL-US-007", RuleOutcome.REJECT),
        ("end_user.owners[1].legal_name", "ECL-US-006", RuleOutcome.REJECT),
    ]


def test_the_valid_certificate_is_clear_of_the_sample_lists() -> None:
    lists = [
        load_screening_list(LISTS / name)
        for name in ("control-list-sample.yaml", "watch-list-sample.yaml")
    ]
    assert Screener(lists, THRESHOLDS).screen_certificate(valid_certificate(), NOW) == ()


# --- list files -----------------------------------------------------------------------


def test_sample_lists_load_with_kinds_sources_and_dates() -> None:
    control = load_screening_list(LISTS / "control-list-sample.yaml")
    watch = load_screening_list(LISTS / "watch-list-sample.yaml")
    assert (control.kind, watch.kind) == (ListKind.CONTROL, ListKind.WATCH)
    names = {e.name for e in control.entries}
    assert {
        "General Dynamics",
        "L3Harris Technologies",
        "Lockheed Martin",
        "Boeing Defense",
    } <= names
    assert {"Anduril", "American Photonics", "Novotech"} <= names
    taiwanese = [e for e in control.entries if e.country_code == "TW"]
    assert taiwanese
    assert all("Announcement No. 35 of 2025" in e.source for e in taiwanese)
    assert all("Fictional" in e.note for e in taiwanese)


def test_a_bad_list_names_source_and_path() -> None:
    text = "id: x\nname: x\nkind: banned\nsource: s\nlist_date: 2025-01-01\n"
    with pytest.raises(BundleError) as caught:
        parse_screening_list(text, "lists/x.yaml")
    assert str(caught.value).startswith("lists/x.yaml: kind: ")
    assert caught.value.field == "kind"


def test_duplicate_entry_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="entry id C-1 is used by entries"):
        _list(ListKind.CONTROL, _entry("C-1", "A"), _entry("C-1", "B"))


# --- quality on the labelled pairs ------------------------------------------------------


def test_labelled_pairs_are_enough_and_of_every_kind() -> None:
    pairs = load_pairs(PAIRS)
    assert len(pairs) >= 150
    kinds = {p.kind for p in pairs}
    assert {"transliteration", "reorder", "legal_form", "abbreviation", "homoglyph"} <= kinds
    assert {"sibling", "subsidiary", "common_word"} <= kinds


def test_quality_at_the_shipped_thresholds() -> None:
    """Regression bounds on the figures in bench/RESULTS.md: every true match at least
    refers, no related party is rejected on its name, and hits are nearly all true."""
    scores = [(name_score(p.query, p.listed), p.label) for p in load_pairs(PAIRS)]
    q = quality(scores, THRESHOLDS.refer_at, THRESHOLDS.reject_at)
    assert q.flag_recall == 1.0
    assert q.related_hit == 0.0
    assert q.hit_precision >= 0.98
    assert q.hit_recall >= 0.95


def test_index_loses_no_labelled_pair_against_an_exhaustive_scan() -> None:
    """Every listed name of the pairs among 20,000 synthetic entries, with a small
    `max_block` so that common words are skipped: each query finds its own pair's entry
    through the index exactly when a scan of every entry does, with the same score
    (for distinct pairs, the index may only find less).
    (The scan also finds some other pairs' entries through common words alone, such as
    "Anduril Industries" ~ "Andhra Industries"; the index drops those, by design.)"""
    pairs = load_pairs(PAIRS)
    labelled = [_entry(f"P-{i:03d}", p.listed) for i, p in enumerate(pairs)]
    screener = Screener(
        [
            _list(ListKind.CONTROL, *labelled, list_id="pairs"),
            _list(ListKind.WATCH, *synthetic_entries(20_000), list_id="synthetic"),
        ],
        ScreeningThresholds(max_matches_per_name=10_000),
        max_block=200,
    )
    found = {"match": 0, "related": 0, "distinct": 0}
    for i, pair in enumerate(pairs):
        name = NameToScreen(f"q{i}", pair.query)
        own = f"P-{i:03d}"
        indexed = [m.score for m in screener.screen_name(name, NOW) if m.entry_id == own]
        scanned = [
            m.score for m in screener.screen_name(name, NOW, exhaustive=True) if m.entry_id == own
        ]
        if pair.label == "distinct":  # a false positive the index drops is no loss
            assert set(indexed) <= set(scanned), pair
        else:
            assert indexed == scanned, pair
        found[pair.label] += bool(scanned)
    # Not vacuous: the scan finds every true match and some related pairs.
    assert found["match"] == sum(p.label == "match" for p in pairs)
    assert found["related"] > 0


def test_index_scores_far_fewer_names_than_the_list_holds() -> None:
    screener = Screener(
        [_list(ListKind.WATCH, *synthetic_entries(20_000))], THRESHOLDS, max_block=200
    )
    for name in (
        "Jay-Ushin Limited",
        "Baotou Tianhe Magnetics Technology Co., Ltd.",
        "Minda Industries",
    ):
        assert len(screener.candidates(name)) < screener.size // 20

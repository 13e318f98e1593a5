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
    ScreeningMatch,
    ScreeningThresholds,
    name_score,
    names_to_screen,
    normalize_party_name,
    parse_screening_list,
)
from eucgate.errors import BundleError
from eucgate.policyfiles import load_screening_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.screening import EXTERNAL, PAIRS, load_pairs, quality, synthetic_entries
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
        ("Baotou Tianhe Magnetics Technology Co., Ltd.", "baotou tianhe magnetics + technology"),
        ("The Boeing Company", "boeing"),
        ("Müller Präzisionstechnik GmbH", "muller prazisionstechnik"),
        ("Kestrel Dynamics L.L.C.", "kestrel dynamics"),
        ("Sterling & Vance Tech", "sterling vance + technology"),
        ("Xi’an Hangtian Electronic", "xian hangtian + electronics"),
        ("Ａｎｄｕｒｉｌ Ｉｎｄｕｓｔｒｉｅｓ", "anduril + industries"),
        ("Lосkhееd Маrtіn", "lockheed martin"),  # Cyrillic о, с, е, М, а, і
        ("Αmerican Ρhotonics", "american photonics"),  # Greek Α, Ρ
        ("ʟᴏᴄᴋʜᴇᴇᴅ ᴍᴀʀᴛɪɴ", "lockheed martin"),  # Latin small capitals
        ("ʟockheed ᴍartin", "lockheed martin"),
        ("L\u200bockheed Ma\u202ertin", "lockheed martin"),  # zero-width, bidi control
        ("Рособоронэкспорт", "rosoboroneksport"),  # all Cyrillic: transliterated
        ("ООО Ромашка", "romashka"),  # legal form in Cyrillic
        ("比亚迪股份有限公司", "bi ya di"),  # one token per Han syllable, legal form gone
        ("삼성전자 주식회사", "samseongjeonja"),
        ("National Chung-Shan Institute", "national zhongshan institute"),
        ("  L-3   Harris  ", "l3 harris"),
        ("PT Perusahaan Listrik Negara", "perusahaan listrik negara"),
        ("Perseroan Terbatas Perusahaan Listrik Negara", "perusahaan listrik negara"),
        ("BENEFICIARY: Acme Rare Metals Ltd", "acme rare + metals"),
        ("Blue Heron (ex-Green Sea)", "blue heron"),
        ("Ocean Star Holdings No. 3 Ltd", "ocean star | 3 no + holdings"),
        ("Nordic Ore II", "nordic ore | ii"),
        ("Bank of China Singapore Branch", "bank china | branch singapore"),
        ("Cosco Shipping Lines Qingdao", "cosco lines | qingdao + shipping"),
        ("Limited", ""),  # nothing but a legal form: blank
    ],
)
def test_normalize_party_name(written: str, normalised: str) -> None:
    assert normalize_party_name(written) == normalised


def test_name_score_ignores_order_and_spacing_but_not_extra_words() -> None:
    assert name_score("Martin Lockheed Corp", "Lockheed Martin") == 1.0
    assert name_score("Zhong Xing Avionics", "Zhongxing Avionics") == 1.0
    assert 0.80 <= name_score("Lockheed Martin Space", "Lockheed Martin") < 0.95
    assert name_score("Novotech", "General Dynamics") < 0.5


# --- the cases of issue 12: each failed before core.names ------------------------------


def _screen(listed: str, written: str, kind: ListKind = ListKind.CONTROL) -> list[ScreeningMatch]:
    screener = Screener([_list(kind, _entry("C-1", listed))], THRESHOLDS)
    return list(screener.screen_names([NameToScreen("end_user.legal_name", written)], NOW))


@pytest.mark.parametrize(
    "written", ["ʟᴏᴄᴋʜᴇᴇᴅ ᴍᴀʀᴛɪɴ", "ʟockheed ᴍartin", "ＬＯＣＫＨＥＥＤ ＭＡＲＴＩＮ"]
)
def test_latin_small_capitals_and_full_width_hit_the_listed_name(written: str) -> None:
    [match] = _screen("Lockheed Martin", written)
    assert (match.outcome, match.score) == (RuleOutcome.REJECT, 1.0)


@pytest.mark.parametrize(
    ("listed", "written"),
    [
        ("中国航天科技集团有限公司", "比亚迪股份有限公司"),  # BYD is not CASC
        ("中国航空工业集团有限公司", "华为技术有限公司"),
        ("삼성전자 주식회사", "현대자동차 주식회사"),
        ("אלביט מערכות", "התעשייה האווירית"),
    ],
)
def test_names_in_other_scripts_do_not_all_match_each_other(listed: str, written: str) -> None:
    assert _screen(listed, written) == []
    assert name_score(listed, written) < THRESHOLDS.refer_at


@pytest.mark.parametrize(
    ("listed", "written"),
    [
        ("Biyadi", "比亚迪股份有限公司"),
        ("Rosoboronexport", "Рособоронэкспорт"),
        ("Samseong Jeonja", "삼성전자 주식회사"),
        ("中国航天科技集团有限公司", "中国航天科技集团"),
    ],
)
def test_every_script_is_transliterated_before_comparison(listed: str, written: str) -> None:
    [match] = _screen(listed, written)
    assert match.score >= THRESHOLDS.refer_at


@pytest.mark.parametrize("blank", ["有限公司", "Limited", "Co., Ltd.", "---", "Trading", "The"])
def test_a_blank_name_matches_nothing_not_even_itself(blank: str) -> None:
    assert name_score(blank, blank) == 0.0
    assert _screen(blank, blank) == []
    assert _screen("有限公司", "比亚迪有限公司") == []


@pytest.mark.parametrize(
    ("listed", "written"),
    [
        ("Wing Tat Trading Company Limited", "Wing Fat Trading Company Limited"),
        ("Ocean Star Holdings No. 8 Ltd", "Ocean Star Holdings No. 3 Ltd"),
        ("Nordic Ore II", "Nordic Ore I"),
        ("Nordic Ore", "Nordic Ore III"),
        ("Bank of Kunlun", "Bank of Kunlun Singapore Branch"),
        ("Cosco Shipping Lines", "Cosco Shipping Lines Qingdao"),
        ("Jay Ushin Electronics Limited", "Jay-Ushin Limited"),
    ],
)
def test_distinguishing_tokens_refer_instead_of_rejecting(listed: str, written: str) -> None:
    [match] = _screen(listed, written)
    assert match.outcome is RuleOutcome.REFER
    assert match.held
    assert THRESHOLDS.refer_at <= match.score < THRESHOLDS.reject_at


@pytest.mark.parametrize(
    ("listed", "written"),
    [
        ("Green Sea", "Blue Heron (ex-Green Sea)"),
        ("Green Sea", "Blue Heron (formerly Green Sea)"),
        ("Acme Rare Metals Ltd", "BENEFICIARY: Acme Rare Metals Ltd"),
        ("PT Perusahaan Listrik Negara", "Perseroan Terbatas Perusahaan Listrik Negara"),
        ("Acme Rare Metals Ltd", "Acme Rare Metals Ltd (Hong Kong registered)"),
    ],
)
def test_notes_former_names_labels_and_spelt_out_legal_forms(listed: str, written: str) -> None:
    [match] = _screen(listed, written)
    assert (match.outcome, match.score) == (RuleOutcome.REJECT, 1.0)


def test_a_match_records_the_compared_forms() -> None:
    [match] = _screen("Wing Tat Trading Company Limited", "Wing Fat Trading Co., Ltd.")
    assert (match.screened_form, match.matched_form) == (
        "wing fat + trading",
        "wing tat + trading",
    )
    assert (match.entry_id, match.list_id) == ("C-1", "l1")


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
    entries = _list(ListKind.CONTROL, _entry("C-1", "Kestrel Dynamics Pune Works"))
    name = NameToScreen("f", "Kestrel Dynamics Mumbai Works")
    strict = Screener([entries], ScreeningThresholds(refer_at=0.7, reject_at=0.8))
    [match] = strict.screen_names([name], NOW)
    assert match.outcome is RuleOutcome.REJECT
    lax = Screener([entries], ScreeningThresholds(refer_at=0.9, reject_at=0.99))
    assert lax.screen_names([name], NOW) == ()


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
    assert q.flag_recall >= 0.98
    assert q.related_hit == 0.0
    assert q.hit_precision >= 0.98
    # Typos, one-letter differences and sound-alikes refer rather than hit (issue 12).
    assert q.hit_recall >= 0.93


def _index_and_scan(screener: Screener, written: str) -> tuple[dict[str, float], dict[str, float]]:
    name = NameToScreen("f", written)
    indexed = {m.entry_id: m.score for m in screener.screen_name(name, NOW)}
    scanned = {m.entry_id: m.score for m in screener.screen_name(name, NOW, exhaustive=True)}
    return indexed, scanned


def test_index_loses_no_labelled_pair_against_an_exhaustive_scan() -> None:
    """Every listed name of the pairs among 20,000 synthetic entries: each query finds
    its own pair's entry through the index exactly when a scan of every entry does, with
    the same score; other entries the index finds, the scan finds too. (The scan also
    finds 'Novotec' ~ 'Innovotech', three letters apart, which the index drops.)"""
    pairs = load_pairs(PAIRS)
    labelled = [_entry(f"P-{i:03d}", p.listed) for i, p in enumerate(pairs)]
    screener = Screener(
        [
            _list(ListKind.CONTROL, *labelled, list_id="pairs"),
            _list(ListKind.WATCH, *synthetic_entries(20_000), list_id="synthetic"),
        ],
        ScreeningThresholds(max_matches_per_name=10_000),
    )
    found = 0
    for i, pair in enumerate(pairs):
        indexed, scanned = _index_and_scan(screener, pair.query)
        own = f"P-{i:03d}"
        assert indexed.get(own) == scanned.get(own), pair
        assert indexed.items() <= scanned.items(), pair
        found += own in scanned
    # Not vacuous: the scan finds nearly every pair's own entry.
    assert found >= 0.9 * sum(p.label == "match" for p in pairs)


# Words for generated names: coined syllable words, transliterated words, business words.
_SYLLABLES = ("an", "bao", "chen", "da", "dong", "hua", "jin", "kai", "li", "ming", "rong",
              "tian", "wei", "xin", "yu", "zhong", "ar", "bel", "kor", "mar", "nor", "sol",
              "vish", "ros", "obor", "eks", "port", "ushin", "lock", "heed")  # fmt: skip
_WORDS = ("aerospace", "defense", "magnetics", "optics", "precision", "industries",
          "trading", "group", "holdings", "no", "3", "ii", "branch", "qingdao", "the")  # fmt: skip
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


@st.composite
def _word(draw: st.DrawFn) -> str:
    return "".join(draw(st.lists(st.sampled_from(_SYLLABLES), min_size=1, max_size=4)))


@st.composite
def _name(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.one_of(_word(), st.sampled_from(_WORDS)), min_size=1, max_size=5))
    return " ".join(words)


@st.composite
def _mutant(draw: st.DrawFn, name: str) -> str:
    """A name a few keystrokes from `name`: one letter inserted, dropped or changed in
    some words, words swapped, joined or split, case changed."""
    words = name.split()
    edited: set[str] = set()
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(words) - 1))
        word = words[i]
        op = draw(st.sampled_from(("insert", "drop", "change", "swap", "join", "split")))
        if op in {"insert", "drop", "change"}:
            if word in edited:
                continue
            edited.add(word)
        at = draw(st.integers(0, len(word)))
        letter = draw(st.sampled_from(_ALPHABET))
        if op == "insert":
            words[i] = word[:at] + letter + word[at:]
        elif op == "drop" and len(word) > 1:
            words[i] = word[:at] + word[at + 1 :]
        elif op == "change" and at < len(word):
            words[i] = word[:at] + letter + word[at + 1 :]
        elif op == "swap" and len(words) > 1:
            j = draw(st.integers(0, len(words) - 1))
            words[i], words[j] = words[j], words[i]
        elif op == "join" and i + 1 < len(words):
            words[i : i + 2] = [words[i] + words[i + 1]]
        elif op == "split" and 0 < at < len(word):
            words[i : i + 1] = [word[:at], word[at:]]
        if op != "swap":  # an edited, joined or split word is not edited again
            edited.update(words[i : i + 2] if op == "split" else words[i : i + 1])
    return " ".join(w.upper() if draw(st.booleans()) else w for w in words if w)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples in every run: CI cannot flake on a rare draw
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_index_finds_whatever_the_scan_finds(data: st.DataObject) -> None:
    """Property: for a random list and a name that is random or a few keystrokes from a
    listed one (each word of a two-word name one letter longer, say), the index returns
    every entry an exhaustive scan scores at or above refer_at, with the same score.
    (Short listed names are scanned whole, since short names a few letters apart share
    no key. For longer names it is checked, not proven: three runs of 6,000 random
    examples found no counterexample; see bench/RESULTS.md.)"""
    listed = data.draw(st.lists(_name(), min_size=1, max_size=30))
    entries = [_entry(f"E-{i}", name) for i, name in enumerate(listed)]
    screener = Screener(
        [_list(ListKind.CONTROL, *entries)], ScreeningThresholds(max_matches_per_name=100)
    )
    target = data.draw(st.sampled_from(listed))
    written = data.draw(st.one_of(_name(), _mutant(target)))
    indexed, scanned = _index_and_scan(screener, written)
    assert indexed == scanned


@pytest.mark.parametrize(
    ("listed", "written"),
    [
        # A consonant inserted early in each word: the index before issue 12 (prefixes,
        # consonant skeletons) missed these two while the scan scored 0.958 and 0.929.
        ("Vishvakarma Kalashnikov", "Vrishvakarma Klalashnikov"),
        ("Baotou Tianhe", "Btaotou Tsianhe"),
        ("Rosoboronexport Kalashnikov", "Rosoboronnexport Kalashnikkov"),
        ("Minda Optics", "Mindaa Opttics"),
    ],
)
def test_index_finds_two_word_names_with_a_letter_inserted_in_each(
    listed: str, written: str
) -> None:
    screener = Screener(
        [
            _list(ListKind.CONTROL, _entry("C-1", listed)),
            _list(ListKind.WATCH, *synthetic_entries(5_000), list_id="synthetic"),
        ],
        THRESHOLDS,
    )
    indexed, scanned = _index_and_scan(screener, written)
    assert "C-1" in scanned
    assert indexed == scanned


def test_index_scores_far_fewer_names_than_the_list_holds() -> None:
    screener = Screener([_list(ListKind.WATCH, *synthetic_entries(20_000))], THRESHOLDS)
    for name in (
        "Jay-Ushin Limited",
        "Baotou Tianhe Holdings Co., Ltd.",
        "Minda Industries",
    ):
        # Phonetic keys of short words ("minda": MNT) are shared by many coined names.
        assert len(screener.candidates(name)) < screener.size // 10


# --- the external set: real list names, many scripts ----------------------------------


def test_external_set_is_labelled_per_script_with_its_sources() -> None:
    pairs = load_pairs(EXTERNAL)
    assert len(pairs) >= 300
    assert {"Latin", "Cyrillic", "Arabic", "Cjk", "Hangul", "Hebrew", "Myanmar"} <= {
        p.script for p in pairs
    }
    assert (EXTERNAL.parent / "screening-external.md").is_file()


def test_external_set_meets_the_targets_at_the_shipped_thresholds() -> None:
    """Regression bounds on bench/RESULTS.md: reject precision 0.98, flag recall 0.95 on
    Latin-script and 0.85 on cross-script true matches, nothing flagged between names
    whose comparable forms are empty."""
    pairs = load_pairs(EXTERNAL)
    for latin, target in ((True, 0.95), (False, 0.85)):
        group = [p for p in pairs if (p.script == "Latin") is latin]
        scores = [(name_score(p.query, p.listed), p.label) for p in group]
        q = quality(scores, THRESHOLDS.refer_at, THRESHOLDS.reject_at)
        assert q.flag_recall >= target
        assert q.hit_precision >= 0.98
    empty = [p for p in pairs if p.kind == "empty_form"]
    assert empty
    assert all(name_score(p.query, p.listed) == 0.0 for p in empty)


def test_an_exact_hit_is_not_reported_as_held_and_a_sound_alike_says_why() -> None:
    [hit] = _screen("Rosoboronexport", "ROSOBORONEXPORT JSC")
    assert (hit.outcome, hit.held, hit.basis) == (RuleOutcome.REJECT, False, "")
    [near] = _screen("HAMIEH, Jamil", "HAMIYYAH, Jamil")
    assert (near.outcome, near.held) == (RuleOutcome.REFER, True)
    assert near.basis == "they only sound alike"


def test_remembered_answers_follow_the_day_and_equal_fresh_ones() -> None:
    """The screener remembers answers by name and day: a listing that starts tomorrow
    is not hidden by today's remembered answer, and forgetting changes nothing."""
    screener = Screener(
        [_list(ListKind.CONTROL, _entry("C-1", "Novotech", effective_from="2026-06-02"))],
        THRESHOLDS,
    )
    name = NameToScreen("end_user.legal_name", "Novotech")
    today, tomorrow = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)
    assert screener.screen_names([name], today) == ()
    [match] = screener.screen_names([name], tomorrow)
    assert match.entry_id == "C-1"
    remembered = screener.screen_names([name], tomorrow)
    screener.forget()
    assert screener.screen_names([name], tomorrow) == remembered == (match,)

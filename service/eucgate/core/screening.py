"""Party screening: every name on a certificate against control and watch lists.

DOMAIN.md's practice: normalise names (case, punctuation, diacritics, legal-form words,
transliteration), score them with a token-based fuzzy ratio, REFER in a grey zone and
REJECT above it. The list's kind decides the outcome: a control-list hit REJECTs and its
grey zone REFERs; a watch-list match REFERs. Screened are each party's legal name, its
declared parent company and every owner of `owner_share_percent` (50) % or more, since
the October 2025 announcements reach subsidiaries 50 % or more owned by a listed party.

The score is rapidfuzz's `token_sort_ratio` over normalised names (0..1): word order does
not matter, but extra or missing words cost, so "Lockheed Martin Space" against a listed
"Lockheed Martin" lands in the grey zone (a person decides whether the unit is the listed
one) instead of hitting outright, as `token_set_ratio` and `WRatio` would (they score any
name that contains a listed name as 1.0). bench/RESULTS.md records the comparison on the
labelled pairs in tests/data/screening-pairs.csv.

`Screener` is built once per bundle and indexes every name and alias by blocking key
(normalised tokens, joins of adjacent tokens, 4-letter prefixes); a name is scored only
against entries sharing one of its rarer keys, never against the whole list. Matching is
pure: it reads no clock, file or environment; entries' effective windows are judged by
the `now` the caller passes. `load_screening_list` is the only function here that reads
a file.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from rapidfuzz import fuzz, process

from eucgate.core.decision import RuleOutcome
from eucgate.core.model import Certificate, CountryCode, Party
from eucgate.core.policyfields import IsoDate, Text
from eucgate.errors import BundleError

__all__ = [
    "ListEntry",
    "ListKind",
    "NameToScreen",
    "Screener",
    "ScreeningList",
    "ScreeningMatch",
    "ScreeningThresholds",
    "compact_party_name",
    "load_screening_list",
    "name_score",
    "names_to_screen",
    "normalize_party_name",
    "parse_screening_list",
]

# --- normalisation --------------------------------------------------------------------

# Latin look-alikes in Cyrillic and Greek (after case folding), after Unicode's
# confusables.txt. Applied only to names that also hold Latin letters: a mixed-script
# name is the mark of a spoofed one, while an all-Cyrillic name is transliterated.
_CONFUSABLES = str.maketrans(
    # Cyrillic, Greek, then Latin letters that NFKD does not decompose.
    "авсԁеёһніїјкӏморԛѕтуԝхьαβεηικμνορτυχζıɡłđøð",
    "abcdeehhiijklmopqstywxbabenikmvoptuxzigldod",
) | str.maketrans({"æ": "ae", "œ": "oe", "þ": "th"})

# Plain transliteration for names written wholly in Cyrillic or Greek.
_TRANSLITERATION = (
    str.maketrans(
        "абвгґдеёзиійклмнопрстуфыэαβγδεζηικλμνξοπρσςτυφω",
        "abvggdeeziiyklmnoprstufyeavgdeziiklmnxoprsstyfo",
    )
    | str.maketrans(
        {"є": "ye", "ж": "zh", "ї": "yi", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch"}
    )
    | str.maketrans({"ъ": "", "ь": "", "ю": "yu", "я": "ya", "θ": "th", "χ": "ch", "ψ": "ps"})
)

# Legal-form words, removed wherever they stand (longest sequence first).
_LEGAL_FORMS: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(form.split())
            for form in (
                "private limited",
                "pvt ltd",
                "pvt",
                "pte ltd",
                "pte",
                "pty ltd",
                "pty",
                "co ltd",
                "company limited",
                "limited liability company",
                "limited liability partnership",
                "limited",
                "ltd",
                "inc",
                "incorporated",
                "llc",
                "llp",
                "plc",
                "corp",
                "corporation",
                "co",
                "company",
                "gmbh",
                "mbh",
                "ag",
                "kg",
                "sa",
                "nv",
                "bv",
                "srl",
                "spa",
                "sarl",
                "sas",
                "kk",
                "as",
                "kabushiki kaisha",
                "jsc",
                "ojsc",
                "pjsc",
                "cjsc",
                "ooo",
                "oao",
                "zao",
                "sdn bhd",
                "bhd",
                "tbk",
            )
        ),
        key=len,
        reverse=True,
    )
)
_STOP_WORDS = frozenset({"the", "and", "of", "for"})

# Abbreviations and spelling variants, folded to one form on both sides.
_ABBREVIATIONS = {
    "intl": "international",
    "tech": "technology",
    "technologies": "technology",
    "sys": "systems",
    "system": "systems",
    "mfg": "manufacturing",
    "natl": "national",
    "svc": "services",
    "svcs": "services",
    "service": "services",
    "eng": "engineering",
    "engg": "engineering",
    "inds": "industries",
    "industry": "industries",
    "lab": "laboratories",
    "labs": "laboratories",
    "laboratory": "laboratories",
    "electronic": "electronics",
    "defence": "defense",
    "centre": "center",
    "univ": "university",
    "inst": "institute",
    "grp": "group",
    "hldgs": "holdings",
    "mgmt": "management",
    "aeronautic": "aeronautics",
}

# Older romanisations of Chinese syllables (Wade-Giles, postal) folded to pinyin, so
# Taiwanese and older names meet their pinyin spelling. Small on purpose: each entry
# merges two spellings on both sides of every comparison.
_ROMANISATION = {
    "peking": "beijing",
    # and two common spelling pairs of Indian names
    "shree": "shri",
    "sri": "shri",
    "laxmi": "lakshmi",
    "tsinghua": "qinghua",
    "chung": "zhong",
    "hsin": "xin",
    "hsing": "xing",
    "hsiung": "xiong",
    "hsiao": "xiao",
    "hsu": "xu",
    "kuang": "guang",
    "kwang": "guang",
    "tung": "dong",
    "chiang": "jiang",
    "chien": "jian",
    "chou": "zhou",
    "chih": "zhi",
    "tsai": "cai",
    "tseng": "zeng",
    "tsao": "cao",
    "kuo": "guo",
    "hwa": "hua",
    "teh": "de",
    "tzu": "zi",
    "szu": "si",
    "kwangtung": "guangdong",
    "kaohsiung": "gaoxiong",
    "taichung": "taizhong",
    "hsinchu": "xinzhu",
    "chungshan": "zhongshan",
    "chunghwa": "zhonghua",
}

_APOSTROPHES = re.compile(r"['’ʼ`´]")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _has_latin(text: str) -> bool:
    return any("a" <= ch <= "z" for ch in text)


def _fold_script(text: str) -> str:
    if text.isascii():
        return text
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    table = _CONFUSABLES if _has_latin(stripped) else _TRANSLITERATION
    # Unmapped letters of either table (Latin ones NFKD keeps whole) still fold.
    return stripped.translate(table).translate(_CONFUSABLES)


def _join_initials(tokens: list[str]) -> list[str]:
    """Runs of one-character tokens are an initialism: "l l c" -> "llc", "l 3" -> "l3"."""
    out: list[str] = []
    run = ""
    for token in tokens:
        if len(token) == 1:
            run += token
            continue
        if run:
            out.append(run)
            run = ""
        out.append(token)
    if run:
        out.append(run)
    return out


_LEGAL_FORMS_BY_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {
    first: tuple(f for f in _LEGAL_FORMS if f[0] == first) for first in {f[0] for f in _LEGAL_FORMS}
}


def _drop_legal_forms(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for form in _LEGAL_FORMS_BY_FIRST.get(tokens[i], ()):
            if tuple(tokens[i : i + len(form)]) == form:
                i += len(form)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _words(name: str) -> list[str]:
    """Folded words before abbreviations are expanded, legal forms and stop words gone."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _fold_script(text).replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    raw = _join_initials(_NOT_ALNUM.sub(" ", text).split())
    words = [_ROMANISATION.get(t, t) for t in raw]
    kept = [t for t in _drop_legal_forms(words) if t not in _STOP_WORDS]
    # A name that is nothing but legal-form or stop words keeps its words.
    return kept or words


def _forms(name: str) -> tuple[str, str]:
    words = _words(name)
    return " ".join(_ABBREVIATIONS.get(t, t) for t in words), "".join(words)


def normalize_party_name(name: str) -> str:
    """The comparable form of a party name: NFKC, case folded, diacritics stripped,
    Cyrillic and Greek look-alikes folded (or transliterated when the whole name is in
    that script), punctuation and legal-form words ("Pvt Ltd", "Co., Ltd.", "GmbH")
    dropped, common abbreviations expanded, single spaces. Never raises."""
    return " ".join(_ABBREVIATIONS.get(t, t) for t in _words(name))


def compact_party_name(name: str) -> str:
    """The name's words run together, abbreviations as written: the form in which
    "Zhong Xing" meets "Zhongxing" and "Novo-tech" meets "Novotech"."""
    return _forms(name)[1]


def name_score(a: str, b: str) -> float:
    """Similarity of two party names in 0..1: the better of token_sort_ratio over the
    normalised names (word order free) and the plain ratio of their compact forms
    (spacing free). Symmetric; never raises."""
    return (
        max(
            fuzz.token_sort_ratio(normalize_party_name(a), normalize_party_name(b), processor=None),
            fuzz.ratio(compact_party_name(a), compact_party_name(b), processor=None),
        )
        / 100.0
    )


_VOWELS = str.maketrans("", "", "aeiouy")
_LETTER_RUNS = re.compile(r"[a-z]{3,}")


def _blocking_keys(normalized: str, compact: str) -> set[str]:
    """Keys an index files a name under: its tokens, the joins of adjacent tokens and
    the compact form ("hua wei" meets "huawei"), 4-letter prefixes of tokens (a typo
    late in a word still meets its original) and tokens' consonant skeletons ("kexin"
    meets "kaixin", "lakshmi" "lakshmy")."""
    tokens = normalized.split()
    keys = set(tokens)
    keys.add(compact)
    keys.update(a + b for a, b in itertools.pairwise(tokens))
    keys.update("^" + t[:4] for t in tokens if len(t) >= 4)
    keys.update("~" + t.translate(_VOWELS) for t in tokens if len(t) >= 4)
    # Letters beside digits: "l3harris" meets "harris".
    keys.update(run for t in tokens if not t.isalpha() for run in _LETTER_RUNS.findall(t))
    return keys


# --- lists ----------------------------------------------------------------------------


class ListKind(StrEnum):
    """A control list REJECTs on a hit and REFERs in the grey zone; a watch list REFERs."""

    CONTROL = "control"
    WATCH = "watch"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ListEntry(_Frozen):
    """One listed party. `source` and `listed_on` default to the list's; the entry
    applies from `effective_from` (default `listed_on`) to `effective_until`, both
    calendar days (UTC) and inclusive."""

    id: Text
    name: Text
    aliases: tuple[Text, ...] = ()
    country_code: CountryCode | None = None
    source: StrictStr = ""
    listed_on: IsoDate | None = None
    effective_from: IsoDate | None = None
    effective_until: IsoDate | None = None
    note: StrictStr = ""

    @field_validator("effective_until")
    @classmethod
    def _until_after_from(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("effective_from") or info.data.get("listed_on")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before effective_from (or listed_on)")
        return value


class ScreeningList(_Frozen):
    """A control or watch list as published: its source and date, and its entries."""

    id: Text
    name: Text
    kind: ListKind
    source: Text
    list_date: IsoDate
    entries: tuple[ListEntry, ...] = ()

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, value: tuple[ListEntry, ...]) -> tuple[ListEntry, ...]:
        seen: dict[str, int] = {}
        for i, entry in enumerate(value):
            if entry.id in seen:
                raise ValueError(
                    f"entry id {entry.id} is used by entries[{seen[entry.id]}] and [{i}]"
                )
            seen[entry.id] = i
        return value


class ScreeningThresholds(_Frozen):
    """Scores (0..1) at which a name match REFERs (`refer_at`, the grey zone's floor) and
    REJECTs on a control list (`reject_at`); owners screened from this share up."""

    refer_at: StrictFloat = Field(default=0.80, gt=0, le=1)
    reject_at: StrictFloat = Field(default=0.95, gt=0, le=1)
    owner_share_percent: StrictInt = Field(default=50, gt=0, le=100)
    max_matches_per_name: StrictInt = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ScreeningThresholds:
        if self.refer_at > self.reject_at:
            raise ValueError("refer_at must not be above reject_at")
        return self


def parse_screening_list(text: str, source: str) -> ScreeningList:
    """Validate list text (YAML or JSON); raises BundleError naming `source` and path."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BundleError(f"{source}: not valid YAML: {exc}") from None
    try:
        return ScreeningList.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {_loc_text(tuple(e['loc'])) or '(list)'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors(include_url=False)
        ]
        first = _loc_text(tuple(exc.errors()[0]["loc"]))
        raise BundleError("\n".join(problems), field=first) from None


def load_screening_list(path: Path) -> ScreeningList:
    """Read and validate a list file; raises BundleError, or OSError if unreadable."""
    return parse_screening_list(path.read_text(encoding="utf-8"), str(path))


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out


# --- what is screened -----------------------------------------------------------------


@dataclass(frozen=True)
class NameToScreen:
    """A name from the certificate and the field it came from."""

    field: str
    name: str


def _party_names(path: str, party: Party, owner_share_percent: int) -> list[NameToScreen]:
    names = [NameToScreen(f"{path}.legal_name", party.legal_name)]
    if party.parent_company.strip():
        names.append(NameToScreen(f"{path}.parent_company", party.parent_company))
    names.extend(
        NameToScreen(f"{path}.owners[{i}].legal_name", owner.legal_name)
        for i, owner in enumerate(party.owners)
        if owner.share_percent >= owner_share_percent
    )
    return names


def names_to_screen(certificate: Certificate, owner_share_percent: int = 50) -> list[NameToScreen]:
    """Every party's legal name, declared parent and owners holding at least
    `owner_share_percent` %, in certificate order, each with its field path."""
    c = certificate
    parties: list[tuple[str, Party]] = []
    if c.exporter is not None:
        parties.append(("exporter", c.exporter))
    parties.append(("importer", c.importer))
    if c.consignee is not None:
        parties.append(("consignee", c.consignee))
    parties.extend((f"intermediaries[{i}].party", m.party) for i, m in enumerate(c.intermediaries))
    parties.append(("end_user", c.end_user))
    return [n for path, party in parties for n in _party_names(path, party, owner_share_percent)]


# --- matching -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningMatch:
    """A certificate name that matched a list entry at or above the grey zone.

    `matched_name` is the entry's name or alias that scored best; `score` is in 0..1.
    `outcome` is REJECT for a control-list hit at or above `reject_at`, else REFER.
    """

    field: str
    screened_name: str
    entry_id: str
    entry_name: str
    matched_name: str
    list_id: str
    list_kind: ListKind
    source: str
    listed_on: date
    score: float
    outcome: RuleOutcome


@dataclass(frozen=True)
class _Indexed:
    """One list entry, resolved: its list, effective window and defaults applied."""

    entry: ListEntry
    screening_list: ScreeningList
    source: str
    listed_on: date
    effective_from: date
    effective_until: date | None

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (
            self.effective_until is None or on <= self.effective_until
        )


class Screener:
    """Lists indexed for screening under fixed thresholds; build once per bundle.

    `max_block` is how many names a blocking key may file before it counts as common:
    a name is scored against the entries filed under its rare keys, and against those
    under its common keys only when it has no rare key (so a name made only of common
    words is still screened, at more cost). Raises ValueError for duplicate entry ids
    within a list.
    """

    def __init__(
        self,
        lists: Sequence[ScreeningList],
        thresholds: ScreeningThresholds,
        *,
        max_block: int = 2000,
    ) -> None:
        self.thresholds = thresholds
        self.max_block = max_block
        self._lists = tuple(lists)
        self._entries: list[_Indexed] = []
        self._names: list[str] = []  # normalised name or alias
        self._compact: list[str] = []  # the same, compact
        self._written: list[str] = []  # the same, as the list writes it
        self._owner: list[int] = []  # index into _entries
        postings: defaultdict[str, list[int]] = defaultdict(list)
        for screening_list in lists:
            for entry in screening_list.entries:
                listed_on = entry.listed_on or screening_list.list_date
                self._entries.append(
                    _Indexed(
                        entry=entry,
                        screening_list=screening_list,
                        source=entry.source or screening_list.source,
                        listed_on=listed_on,
                        effective_from=entry.effective_from or listed_on,
                        effective_until=entry.effective_until,
                    )
                )
                seen: set[tuple[str, str]] = set()
                for written in (entry.name, *entry.aliases):
                    normalized, compact = _forms(written)
                    if (normalized, compact) in seen:
                        continue
                    seen.add((normalized, compact))
                    name_id = len(self._names)
                    self._names.append(normalized)
                    self._compact.append(compact)
                    self._written.append(written)
                    self._owner.append(len(self._entries) - 1)
                    for key in _blocking_keys(normalized, compact):
                        postings[key].append(name_id)
        self._postings = dict(postings)

    def __eq__(self, other: object) -> bool:
        # Two screeners built from the same lists and thresholds screen alike, so a
        # bundle parsed back from its canonical form equals the original.
        if not isinstance(other, Screener):
            return NotImplemented
        return (self._lists, self.thresholds, self.max_block) == (
            other._lists,
            other.thresholds,
            other.max_block,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-free but unhashable lists

    @property
    def size(self) -> int:
        """How many names and aliases are indexed."""
        return len(self._names)

    def candidates(self, name: str) -> list[int]:
        """Ids of the indexed names that share a blocking key with `name` (as written)."""
        keys = _blocking_keys(*_forms(name))
        blocks = [self._postings.get(key, []) for key in sorted(keys)]
        # A key filed under nothing is the rarest of all: it says the name's unusual
        # words are not listed, so its common words need not be searched.
        rare = [b for b in blocks if len(b) <= self.max_block]
        ids: set[int] = set()
        for block in rare or blocks:
            ids.update(block)
        return sorted(ids)

    def screen_name(
        self, name: NameToScreen, now: datetime, *, exhaustive: bool = False
    ) -> list[ScreeningMatch]:
        """Matches for one name at `now`, best first, at most `max_matches_per_name`.

        `exhaustive` scores every indexed name instead of the blocked candidates: the
        reference the index is tested and measured against, not for production use.
        """
        ids = range(len(self._names)) if exhaustive else self.candidates(name.name)
        today = now.date()
        live = [i for i in ids if self._entries[self._owner[i]].in_force(today)]
        cutoff = self.thresholds.refer_at * 100
        normalized, compact = _forms(name.name)
        # name_score, computed as two batched passes (C loops) over the candidates.
        by_words = process.extract(
            normalized,
            [self._names[i] for i in live],
            scorer=fuzz.token_sort_ratio,
            processor=None,
            score_cutoff=cutoff,
            limit=None,
        )
        by_letters = process.extract(
            compact,
            [self._compact[i] for i in live],
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=cutoff,
            limit=None,
        )
        best: dict[int, tuple[float, int]] = {}  # entry -> (score, name id)
        for _, score, position in (*by_words, *by_letters):
            name_id = live[position]
            entry = self._owner[name_id]
            if entry not in best or score > best[entry][0]:
                best[entry] = (score, name_id)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [
            self._match(name, self._entries[entry], name_id, score / 100.0)
            for entry, (score, name_id) in ranked[: self.thresholds.max_matches_per_name]
        ]

    def screen_names(
        self, names: Iterable[NameToScreen], now: datetime, *, exhaustive: bool = False
    ) -> tuple[ScreeningMatch, ...]:
        """Matches for each name in turn (see `screen_name`)."""
        return tuple(m for n in names for m in self.screen_name(n, now, exhaustive=exhaustive))

    def screen_certificate(
        self, certificate: Certificate, now: datetime
    ) -> tuple[ScreeningMatch, ...]:
        """Matches for every name `names_to_screen` takes from the certificate, in
        certificate order; empty when nothing reaches the grey zone. Never reads the clock."""
        names = names_to_screen(certificate, self.thresholds.owner_share_percent)
        return self.screen_names(names, now)

    def _match(
        self, name: NameToScreen, indexed: _Indexed, name_id: int, score: float
    ) -> ScreeningMatch:
        kind = indexed.screening_list.kind
        hit = kind is ListKind.CONTROL and score >= self.thresholds.reject_at
        return ScreeningMatch(
            field=name.field,
            screened_name=name.name,
            entry_id=indexed.entry.id,
            entry_name=indexed.entry.name,
            matched_name=self._written[name_id],
            list_id=indexed.screening_list.id,
            list_kind=kind,
            source=indexed.source,
            listed_on=indexed.listed_on,
            score=round(score, 4),
            outcome=RuleOutcome.REJECT if hit else RuleOutcome.REFER,
        )

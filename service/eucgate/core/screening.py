"""Party screening: every name on a certificate against control and watch lists.

Export-control screening practice: normalise names (case, punctuation, diacritics,
legal-form words, transliteration), score them with a token-based fuzzy ratio, REFER in
a grey zone and REJECT above it. The list's kind decides the outcome: a control-list hit
REJECTs and its grey zone REFERs; a watch-list match REFERs. Screened are each party's
legal name, its declared parent company and every owner of `owner_share_percent` (50) %
or more, since the October 2025 announcements reach subsidiaries 50 % or more owned by a
listed party.

Names are compared in their comparable form (`core.names`: every script in ASCII,
look-alikes folded, legal forms, notes, labels and business words set aside). The score
is the better of rapidfuzz's `token_sort_ratio` over those forms and the ratio of their
compact forms: word order and spacing do not matter, but extra or missing words cost, so
"Lockheed Martin Space" against a listed "Lockheed Martin" lands in the grey zone
instead of hitting outright, as `token_set_ratio` and `WRatio` would. Names that only
sound alike (rigour's metaphone), names whose words are all in the other, and names that
differ in a distinguishing token (numeral, Roman numeral, letter, branch, port, business
word) or by one letter in a word may refer but never reject. bench/RESULTS.md records
the figures on a labelled set of real list names and on the project's own pairs.

`Screener` is built once per bundle and indexes every name and alias by blocking key
(`_blocking_keys`: tokens and their one-letter deletions, prefixes, 6-letter windows,
consonant skeletons and phonetic keys); a name is scored against the entries that share
a key with it, and against short listed names by length, never against the whole list;
tests/unit/test_screening.py checks by property that this finds what a scan of every
entry finds. Matching is pure: it reads no clock, file or environment; entries'
effective windows are judged by the `now` the caller passes. List files are read at
the edge (eucgate.policyfiles).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
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
from rigour.text.phonetics import metaphone

from eucgate.core.decision import RuleOutcome
from eucgate.core.model import Certificate, CountryCode, Party
from eucgate.core.names import (
    ComparableName,
    comparable_name,
    comparable_variants,
    distinguished,
)
from eucgate.core.policyfields import IsoDate, Text
from eucgate.errors import BundleError

__all__ = [
    "ListEntry",
    "ListKind",
    "NameComparison",
    "NameToScreen",
    "Screener",
    "ScreeningList",
    "ScreeningMatch",
    "ScreeningThresholds",
    "compare_names",
    "name_score",
    "names_to_screen",
    "normalize_party_name",
    "parse_screening_list",
]

# --- comparison -----------------------------------------------------------------------


def normalize_party_name(name: str) -> str:
    """The comparable form of a party name (`core.names`): every script in ASCII,
    look-alikes folded, notes, labels and legal forms gone, abbreviations expanded; the
    distinguishing tokens (numerals, single letters, branch and port words) follow after
    a "|" when there are any. Never raises."""
    return _shown(comparable_name(comparable_variants(name)[0]))


def _shown(form: ComparableName) -> str:
    """The comparable form as a reason shows it: scored tokens, then "|" and the
    distinguishing tokens, then "+" and the business descriptors set aside."""
    marks = " | " + " ".join(form.distinguishing) if form.distinguishing else ""
    return form.text + marks + (" + " + " ".join(form.generic) if form.generic else "")


# Listed names this short (compact form, in letters) are scored against every screened
# name that could reach refer_at against them, key or no key.
SHORT_NAME = 7

# One name whose words all sound like words of the other ("Vladimir Putin" in "Putin,
# Vladimir Vladimirovich") scores this: the grey zone, where a person decides.
CONTAINED_SCORE = 0.9


@dataclass(frozen=True)
class NameComparison:
    """How two names compare. `spelled` in 0..1 is how alike they are written; `held`
    when they differ in a distinguishing token or by one letter in a word, so that
    spelling may refer but never reject. `sounded` is how alike they sound, or
    CONTAINED_SCORE when one name's words are all in the other: it may refer, never
    reject. `basis` says why a score was held; the forms are those that scored best."""

    spelled: float
    held: bool
    screened_form: str
    matched_form: str
    sounded: float = 0.0
    basis: str = ""

    @property
    def score(self) -> float:
        """The better of the two scores, before any cap."""
        return max(self.spelled, self.sounded)

    def capped(self, reject_at: float) -> float:
        """The score with each held part kept just below `reject_at`."""
        below = round(reject_at - 0.001, 4)
        spelled = min(self.spelled, below) if self.held else self.spelled
        return max(spelled, min(self.sounded, below))

    def is_held(self, reject_at: float) -> bool:
        """Whether the match stays below `reject_at` because the part that scored best
        is one that may never reject (so a reason says why it only refers)."""
        below = round(reject_at - 0.001, 4)
        spelled = min(self.spelled, below) if self.held else self.spelled
        sounded = min(self.sounded, below)
        return max(spelled, sounded) < reject_at and (self.held or sounded >= spelled)


_NO_MATCH = NameComparison(0.0, False, "", "")


_LABIALS = str.maketrans("PFVW", "BBBB")
_REPEATS = re.compile(r"(.)\1+")


@functools.lru_cache(maxsize=65536)
def _sound(token: str) -> str:
    """A token's phonetic key: `rigour`'s metaphone with a leading vowel as "A", the
    labials B, P, F, V and W as one (Soundex's class 1, plus W: Arabic writes no p, and
    Hebrew and Arabic letters read v or w, p or f), repeats collapsed and a final S
    dropped, so that "bwtyn" and "fvtyn" sound as "putin", "wladimir" as "vladimir"."""
    if not token.isalpha():
        return token
    # German and Slavic "Wl-" is "Vl-" (metaphone would drop the w as silent).
    key = metaphone("v" + token[1:] if token[:2] == "wl" else token) or token.upper()
    if token[0] in "aeiouy":
        key = "A" + (key[1:] if key[:1] in {"A", "E", "I", "O", "U", "Y"} else key)
    key = _REPEATS.sub(r"\1", key.translate(_LABIALS))
    # A final s is a plural or a Baltic ending: "Eagles", "Putinas", "Vladimirs".
    return key[:-1] if len(key) > 2 and key.endswith("S") else key


@dataclass(frozen=True)
class _Scored:
    """A comparable form with the three strings the scorer compares."""

    form: ComparableName
    text: str  # tokens sorted: word order free
    compact: str  # tokens run together: spacing free
    sounds: str  # phonetic keys sorted


@functools.lru_cache(maxsize=65536)
def _scored(form: ComparableName) -> _Scored:
    return _Scored(
        form,
        " ".join(sorted(form.tokens)),
        form.compact,
        " ".join(sorted(_sound(t) for t in form.tokens)),
    )


def _contained(a: _Scored, b: _Scored) -> bool:
    """Whether each word of the name with fewer words sounds like a distinct word of the
    other. A one-word name counts only when it is the whole name (no business word set
    aside: "Kach", "Rosoboronexport", not "Martin Engineering") and four letters or
    more."""
    short, long = sorted((a.form, b.form), key=lambda f: len(f.tokens))
    if len(short.tokens) == len(long.tokens):
        return False
    if len(short.tokens) == 1 and (short.generic or len(short.tokens[0]) < 4):
        return False
    return fuzz.token_set_ratio(a.sounds, b.sounds, processor=None) == 100


def _compare_scored(a: _Scored, b: _Scored) -> NameComparison:
    """The comparison of two comparable forms (see `compare_names`)."""
    if a.form.blank or b.form.blank:
        return _NO_MATCH
    spelled = max(
        fuzz.ratio(a.text, b.text, processor=None),
        fuzz.ratio(a.compact, b.compact, processor=None),
    )
    # Sounds count only with a word that sounds the same on both sides: a ratio over
    # short keys alone finds likeness in anything. It also keeps the index exact: every
    # sound key is a blocking key.
    shared = not set(a.sounds.split()).isdisjoint(b.sounds.split())
    sounded = fuzz.ratio(a.sounds, b.sounds, processor=None) / 100.0 if shared else 0.0
    held = distinguished(a.form, b.form)
    basis = "they differ in a numeral, letter, branch, port or business word" if held else ""
    if sounded > spelled / 100.0:
        basis = "they only sound alike"
    if max(sounded, spelled / 100.0) < CONTAINED_SCORE and _contained(a, b):
        sounded, basis = CONTAINED_SCORE, "one name's words are all in the other"
    if spelled <= 0.0 and sounded <= 0.0:
        return _NO_MATCH
    return NameComparison(
        round(spelled / 100.0, 4), held, _shown(a.form), _shown(b.form), round(sounded, 4), basis
    )


def _forms_of(name: str) -> list[ComparableName]:
    """The comparable forms of each variant of `name`; a variant with two lone letters
    also as if they were one word ("D.E. Diamonds": initials, or "DE Diamonds")."""
    forms: list[ComparableName] = []
    for variant in comparable_variants(name):
        for join_pairs in (False, True):
            form = comparable_name(variant, join_pairs=join_pairs)
            if form not in forms:
                forms.append(form)
    return forms


def compare_names(a: str, b: str, reject_at: float = 0.95) -> NameComparison:
    """The best comparison over the names' variants (a former name in brackets is one).
    Score: the better of token_sort_ratio over the comparable forms (word order free)
    and the plain ratio of their compact forms (spacing free); where the names' sorted
    phonetic keys agree better, or one name's words all sound like words of the other
    (CONTAINED_SCORE), that score instead, held below the hit score. 0 when either form
    is blank. Symmetric; never raises."""
    best = _NO_MATCH
    for fa in _forms_of(a):
        for fb in _forms_of(b):
            found = _compare_scored(_scored(fa), _scored(fb))
            if (found.capped(reject_at), found.score) > (best.capped(reject_at), best.score):
                best = found
    return best


def name_score(a: str, b: str, reject_at: float = 0.95) -> float:
    """`compare_names(a, b)`'s score, capped just below `reject_at` when held."""
    return compare_names(a, b, reject_at).capped(reject_at)


_VOWELS = str.maketrans("", "", "aeiouy")
_LETTER_RUNS = re.compile(r"[a-z]{3,}")


@functools.lru_cache(maxsize=65536)
def _token_keys(token: str) -> frozenset[str]:
    """Keys of one token: itself; its 4-letter prefix, consonant skeleton ("kexin" meets
    "kaixin") and the token with any one letter left out (one inserted, dropped or
    changed letter still meets its original); every 6-letter window ("innovotech" meets
    "novotech"); its phonetic key (names that sound alike share one); the letters beside
    digits ("l3harris" meets "harris")."""
    keys = {token, "-" + token}
    if len(token) >= 4:
        keys.update(("^" + token[:4], "~" + token.translate(_VOWELS)))
        keys.update("-" + token[:i] + token[i + 1 :] for i in range(len(token)))
    if len(token) >= 6:
        # Every 6-letter window: a syllable moved from one end to the other
        # ("anchenbaoan" / "ananchenbao", 0.82) leaves the middle in place.
        keys.update("=" + token[i : i + 6] for i in range(len(token) - 5))
    keys.add("#" + _sound(token))
    if not token.isalpha():
        keys.update(_LETTER_RUNS.findall(token))
    return frozenset(keys)


def _blocking_keys(form: ComparableName) -> set[str]:
    """Keys an index files a comparable name under: the keys of its tokens, of the joins
    of adjacent tokens and of its compact form, each treated as a token ("hua wei" meets
    "huawei", and "aanbao" meets "an bao"). A blank name has none: it matches nothing."""
    if form.blank:
        return set()
    tokens = form.tokens
    keys: set[str] = set()
    for token in {*tokens, form.compact, *(a + b for a, b in itertools.pairwise(tokens))}:
        keys |= _token_keys(token)
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
    `screened_form` and `matched_form` are the comparable forms that scored; `held`
    says the score was held below `reject_at`, and `basis` why (see NameComparison).
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
    screened_form: str = ""
    matched_form: str = ""
    held: bool = False
    basis: str = ""


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

    Each name and alias is filed under the blocking keys of each of its comparable forms
    (`_blocking_keys`); a screened name is scored against every entry that shares a key
    with one of its forms. The keys are chosen so that the index finds whatever an
    exhaustive scan scores at or above `refer_at` (tests/unit/test_screening.py checks
    it by property on random and adversarial names). Raises ValueError for duplicate
    entry ids within a list.
    """

    def __init__(self, lists: Sequence[ScreeningList], thresholds: ScreeningThresholds) -> None:
        self.thresholds = thresholds
        self._lists = tuple(lists)
        self._entries: list[_Indexed] = []
        self._forms: list[_Scored] = []  # comparable form of a name or alias
        self._texts: list[str] = []  # the same, its word-order-free text
        self._compacts: list[str] = []  # the same, compact
        self._sounds: list[str] = []  # the same, its sorted phonetic keys
        self._sound_count: list[int] = []  # the same, how many distinct keys
        self._written: list[str] = []  # the name or alias as the list writes it
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
                seen: set[ComparableName] = set()
                for written in (entry.name, *entry.aliases):
                    for form in _forms_of(written):
                        if form in seen or form.blank:
                            continue
                        seen.add(form)
                        name_id = len(self._forms)
                        scored = _scored(form)
                        self._forms.append(scored)
                        self._texts.append(scored.text)
                        self._compacts.append(scored.compact)
                        self._sounds.append(scored.sounds)
                        self._sound_count.append(len(set(scored.sounds.split())))
                        self._written.append(written)
                        self._owner.append(len(self._entries) - 1)
                        for key in _blocking_keys(form):
                            postings[key].append(name_id)
        self._postings = dict(postings)
        # Short names, by the length of each string the spelled score compares: the
        # lengths sorted, and the ids in the same order.
        short = [i for i, c in enumerate(self._compacts) if len(c) <= SHORT_NAME]
        self._short: dict[str, tuple[list[int], list[int]]] = {}
        for which, strings in (("text", self._texts), ("compact", self._compacts)):
            ordered = sorted((len(strings[i]), i) for i in short)
            self._short[which] = ([n for n, _ in ordered], [i for _, i in ordered])
        self._remember()

    def _remember(self) -> None:
        # The last 4096 names' answers by name and day: parties recur across certificates.
        self._remembered = functools.lru_cache(maxsize=4096)(
            lambda written, day: self._ranked(written, day, False)
        )

    def __getstate__(self) -> dict[str, Any]:
        # The remembered answers hold a closure: a copy or a pickle starts without them.
        state = self.__dict__.copy()
        del state["_remembered"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remember()

    def __eq__(self, other: object) -> bool:
        # Two screeners built from the same lists and thresholds screen alike, so a
        # bundle parsed back from its canonical form equals the original.
        if not isinstance(other, Screener):
            return NotImplemented
        return (self._lists, self.thresholds) == (other._lists, other.thresholds)

    __hash__ = None  # type: ignore[assignment]  # mutable-free but unhashable lists

    @property
    def size(self) -> int:
        """How many names and aliases are indexed."""
        return len(self._forms)

    def candidates(self, name: str) -> list[int]:
        """Ids of the indexed names that share a blocking key with a form of `name`."""
        ids: set[int] = set()
        for form in _forms_of(name):
            for key in _blocking_keys(form):
                ids.update(self._postings.get(key, ()))
        return sorted(ids)

    def screen_name(
        self, name: NameToScreen, now: datetime, *, exhaustive: bool = False
    ) -> list[ScreeningMatch]:
        """Matches for one name at `now`, best first, at most `max_matches_per_name`.

        `exhaustive` scores every indexed name instead of the blocked candidates: the
        reference the index is tested and measured against, not for production use.
        The index's answers for the last names screened are remembered by name and day
        (parties recur across certificates); the answer is the same either way.
        """
        day = now.date()
        ranked = (
            self._ranked(name.name, day, True) if exhaustive else self._remembered(name.name, day)
        )
        return [
            self._match(name, self._entries[entry], name_id, capped, comparison)
            for entry, name_id, capped, comparison in ranked
        ]

    def forget(self) -> None:
        """Drop the remembered answers (benchmarks time screening without them)."""
        self._remembered.cache_clear()

    def _ranked(
        self, written: str, day: date, exhaustive: bool
    ) -> tuple[tuple[int, int, float, NameComparison], ...]:
        """(entry, name id, capped score, comparison) of the best matches of `written`."""
        cutoff = self.thresholds.refer_at * 100
        best: dict[int, tuple[float, NameComparison, int]] = {}  # entry -> best
        for form in _forms_of(written):
            if form.blank:
                continue
            ids = list(range(len(self._forms))) if exhaustive else self._candidates_of(form)
            query = _scored(form)
            for name_id in self._hits(query, ids, cutoff, exhaustive=exhaustive):
                if not self._entries[self._owner[name_id]].in_force(day):
                    continue
                comparison = _compare_scored(query, self._forms[name_id])
                capped = comparison.capped(self.thresholds.reject_at)
                entry = self._owner[name_id]
                if capped >= self.thresholds.refer_at and (
                    entry not in best or capped > best[entry][0]
                ):
                    best[entry] = (capped, comparison, name_id)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return tuple(
            (entry, name_id, capped, comparison)
            for entry, (capped, comparison, name_id) in ranked[
                : self.thresholds.max_matches_per_name
            ]
        )

    def _hits(
        self, query: _Scored, ids: list[int], cutoff: float, *, exhaustive: bool = False
    ) -> set[int]:
        """Ids among `ids` that may score `cutoff` (0..100) or more: batched passes (C
        loops) over each string the scorer compares; each hit is then scored exactly
        by `_compare_scored`, as `compare_names` scores it. Sounds count only with a
        shared sound key, so they are compared with the names filed under the query's
        sound keys (every name, when `exhaustive`)."""
        keys = set(query.sounds.split())
        shared: Counter[int] = Counter()
        for key in keys:
            shared.update(self._postings.get("#" + key, ()))
        sounding = ids if exhaustive else list(shared)
        text_ids = ids if exhaustive else self._with_short(ids, "text", len(query.text), cutoff)
        compact_ids = (
            ids if exhaustive else self._with_short(ids, "compact", len(query.compact), cutoff)
        )
        hits: set[int] = set()
        for text, choices, among in (
            (query.text, self._texts, text_ids),
            (query.compact, self._compacts, compact_ids),
            (query.sounds, self._sounds, sounding),
        ):
            if not among:
                continue
            gather = operator.itemgetter(*among) if len(among) > 1 else None
            picked = gather(choices) if gather else (choices[among[0]],)
            found = process.extract(
                text, picked, scorer=fuzz.ratio, processor=None, score_cutoff=cutoff, limit=None
            )
            hits.update(among[position] for _, _, position in found)
        if cutoff <= CONTAINED_SCORE * 100:
            # Containment: one name's distinct sound keys all among the other's.
            hits.update(i for i, n in shared.items() if n in {len(keys), self._sound_count[i]})
        return hits

    def _with_short(self, ids: list[int], which: str, length: int, cutoff: float) -> list[int]:
        """`ids` and the short names whose `which` string is long enough and short enough
        to score `cutoff` against one of `length` (a ratio t needs the shorter string at
        least t / (2 - t) of the longer). Short names a few letters apart share no key
        ("achenan" / "chenanan" score 0.80), so they are not left to the keys."""
        t = cutoff / 100.0
        # Rounded outwards: a float a hair above a whole length must not drop it.
        lowest = math.ceil(length * t / (2 - t) - 1e-6)
        highest = math.floor(length * (2 - t) / t + 1e-6)
        lengths, short_ids = self._short[which]
        start = bisect.bisect_left(lengths, lowest)
        end = bisect.bisect_right(lengths, highest)
        # A name both filed under a key and short is scored twice: harmless, hits are a set.
        return ids + short_ids[start:end] if start < end else ids

    def _candidates_of(self, form: ComparableName) -> list[int]:
        ids: set[int] = set()
        for key in _blocking_keys(form):
            ids.update(self._postings.get(key, ()))
        return list(ids)

    def screen_names(
        self, names: Iterable[NameToScreen], now: datetime, *, exhaustive: bool = False
    ) -> tuple[ScreeningMatch, ...]:
        """Matches for each name in turn (see `screen_name`); a name written the same way
        in several fields (importer, consignee, end user) is scored once."""
        done: dict[str, list[ScreeningMatch]] = {}
        out: list[ScreeningMatch] = []
        for n in names:
            if n.name not in done:
                done[n.name] = self.screen_name(n, now, exhaustive=exhaustive)
            out.extend(dataclasses.replace(m, field=n.field) for m in done[n.name])
        return tuple(out)

    def screen_certificate(
        self, certificate: Certificate, now: datetime
    ) -> tuple[ScreeningMatch, ...]:
        """Matches for every name `names_to_screen` takes from the certificate, in
        certificate order; empty when nothing reaches the grey zone. Never reads the clock."""
        names = names_to_screen(certificate, self.thresholds.owner_share_percent)
        return self.screen_names(names, now)

    def _match(
        self,
        name: NameToScreen,
        indexed: _Indexed,
        name_id: int,
        score: float,
        comparison: NameComparison,
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
            screened_form=comparison.screened_form,
            matched_form=comparison.matched_form,
            held=comparison.is_held(self.thresholds.reject_at),
            basis=comparison.basis if comparison.is_held(self.thresholds.reject_at) else "",
        )

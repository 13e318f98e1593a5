"""Party names in comparable form: every script in plain letters, legal forms, notes and
labels gone, and the tokens that tell two legal persons apart set aside.

The pipeline for one written name (each step is a library of the field where one exists):

1. **Variants.** A bracketed note is dropped; a former name in it ("X (ex-Y)", "X
   (formerly Y)", "X f/k/a Y") becomes a variant of its own, so a vessel or firm that
   renamed still meets the list's name. A leading label ("BENEFICIARY:") is dropped.
2. **Unicode.** NFKC (full-width and compatibility forms), format characters removed
   (zero-width, bidi controls, soft hyphens), case folded.
3. **Look-alikes.** In a name that mixes Latin letters with another script, each
   non-Latin letter that Unicode's confusables table (UTS #39, ICU's `SpoofChecker`
   skeleton) maps to one Latin letter becomes that letter: "Lосkhееd" with Cyrillic о, с,
   е reads "lockheed". A name wholly in one other script is transliterated instead.
4. **Legal forms** in the name's own script ("ООО", "주식회사", "有限公司") and, after
   transliteration, in Latin ("Perseroan Terbatas", "Aktiengesellschaft", "Sdn Bhd") are
   removed with OpenSanctions' `rigour` organisation-type database (ISO 20275 and
   OCCRP's list), plus the short table below for the forms it lacks ("Corp", "Pvt").
5. **Transliteration** of every script to ASCII with `anyascii` (Cyrillic, Greek,
   Arabic, Hebrew, Devanagari, Hangul, Kana, Burmese, Latin small capitals ...); each Han
   character becomes one syllable token, since Chinese writes no spaces between words;
   Greek digraphs and Arabic alif are written as read (anyascii drops alif).
6. **Tokens.** Punctuation splits words, hyphens join them ("Novo-tech") except after an
   Arabic particle ("al-Zumar"); runs of three or more single letters join ("I.B.M."),
   two stay apart as initials unless they spell a legal form ("A/S"); stop words (the
   Arabic article, `rigour`'s short titles such as "Dr.") and legal forms go; a few
   abbreviations and older romanisations of Chinese fold to one spelling; generic
   business words ("Industries", "Trading") are set aside, not scored.
7. **Distinguishing tokens** are set apart from the tokens that are scored: numerals,
   Roman numerals, single letters, "branch" / "office" with the place before it, and a
   port city at the end. Two names that differ in them are different legal persons often
   enough that a match between them must be referred, never rejected outright.

A name whose comparable form is empty, or a single stop or generic token ("Limited",
"Trading", "Group"), is `blank`: it matches nothing. Pure: reads no file, clock or
environment (the libraries load their tables at import).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass

import icu
from anyascii import anyascii
from rigour._core import person_name_prefixes_list, stopwords_list  # lists: core only
from rigour.names import extract_org_types

__all__ = [
    "ComparableName",
    "comparable_name",
    "comparable_variants",
    "differs_by_one_letter",
    "distinguished",
]

# --- tables ---------------------------------------------------------------------------

# Legal forms `rigour` does not remove (it keeps "corp", "company", "pvt"; it misses
# spaced initialisms and Han-script suffixes written without a space). Token sequences,
# removed wherever they stand, longest first.
_LEGAL_FORMS: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(form.split())
            for form in (
                "private limited",
                "pvt ltd",
                "pvt",
                "private",
                "pte",
                "pty",
                "co ltd",
                "company limited",
                "limited",
                "ltd",
                "inc",
                "incorporated",
                "llc",
                "corp",
                "corporation",
                "co",
                "company",
                "kabushiki kaisha",
                "kk",
                "sa de cv",
                "s de rl",
                "cong ty tnhh",
                "cong ty co phan",
                "tnhh",
                "jsc",
                "ojsc",
                "pjsc",
                "cjsc",
                "tbk",
                "persero",
                # Han-script forms, one token per syllable (see _transliterate).
                "gu fen you xian gong si",
                "you xian ze ren gong si",
                "you xian gong si",
                "gong si",
                "zhu shi hui she",
                "you xian hui she",
                # Hangul forms as anyascii writes them (주식회사, 유한회사).
                "jusighoesa",
                "yuhanhoesa",
            )
        ),
        key=len,
        reverse=True,
    )
)
_LEGAL_FORMS_BY_FIRST: dict[str, tuple[tuple[str, ...], ...]] = {
    first: tuple(f for f in _LEGAL_FORMS if f[0] == first) for first in {f[0] for f in _LEGAL_FORMS}
}

# Dropped from every name. Short on purpose: many short stop words of other languages
# ("di", "de", "la") are also syllables of transliterated names. Besides these: the
# Arabic article, written or left out at will ("AL-ZUMAR" / "ZUMAR"), and `rigour`'s
# short personal titles ("Dr.", "Mr.", "Hon."): "AL ZAWAHIRI, Dr. Ayman".
_STOP_WORDS = frozenset({"the", "and", "of", "for", "al", "el"}) | frozenset(
    w.casefold().rstrip(".")
    for w in person_name_prefixes_list()
    if " " not in w and len(w.rstrip(".")) <= 3 and w.casefold() not in {"pvt", "sr", "fr"}
)
# Arabic articles and kinship words stay words of their own when hyphenated.
_PARTICLES = "al|el|ul|ad|ar|as|ash|at|az|abu|abou|bin|ibn|bint"
# A name reduced to one of these (or a generic word) names no one.
_BLANK_WORDS = frozenset(w.casefold() for w in stopwords_list() if w.isascii() and w.isalpha())

# Generic descriptors of a business: they say what a firm does, not who it is. They are
# not scored (two firms sharing "Industries" are not alike for it) unless a name has
# nothing else; a name reduced to one of them matches nothing; and two names that carry
# different ones ("Sunrise Trading" / "Sunrise Holdings" / "Sunrise") are distinguished
# (refer, never reject). Industry words that do identify in this trade (aerospace,
# defense, magnetics) are deliberately not here.
_GENERIC = frozenset(
    [
        "company",
        "limited",
        "group",
        "holding",
        "holdings",
        "trading",
        "international",
        "industries",
        "industrial",
        "technology",
        "systems",
        "services",
        "enterprise",
        "enterprises",
        "corporation",
        "general",
        "global",
        "import",
        "export",
        "imports",
        "exports",
        "shipping",
        "logistics",
        "engineering",
        "manufacturing",
        "electronics",
        "solutions",
        "materials",
        "products",
        "development",
        "investment",
        "investments",
        "resources",
        "energy",
        "metals",
        "supply",
        "supplies",
        "equipment",
        "partners",
        "associates",
        "ventures",
        "commercial",
        "marine",
        "electric",
        "electrical",
        "machinery",
        "chemical",
        "chemicals",
    ]
)

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

# Older romanisations of Chinese syllables (Wade-Giles, postal) folded to pinyin, and two
# common spelling pairs of Indian names. Small on purpose: each entry merges two
# spellings on both sides of every comparison.
_ROMANISATION = {
    "peking": "beijing",
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

_ROMAN_NUMERALS = frozenset(
    ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv",
     "xv", "xvi", "xvii", "xviii", "xix", "xx")
)  # fmt: skip
_BRANCH_WORDS = frozenset({"branch", "branches", "office", "representative"})
# Port cities that end names of shipping and trading firms' local units ("... Qingdao").
# Only as the last token(s) or before "branch": at the start they are part of a name.
_PORTS = frozenset(
    tuple(port.split("_"))
    for port in (
        "shanghai", "shenzhen", "ningbo", "qingdao", "guangzhou", "tianjin", "xiamen",
        "dalian", "zhoushan", "hong_kong", "kowloon", "singapore", "busan", "incheon",
        "kaohsiung", "keelung", "rotterdam", "antwerp", "hamburg", "bremen", "bremerhaven",
        "dubai", "jebel_ali", "sharjah", "fujairah", "port_klang", "klang", "penang",
        "tanjung_pelepas", "jakarta", "surabaya", "manila", "haiphong", "ho_chi_minh",
        "laem_chabang", "bangkok", "colombo", "mumbai", "nhava_sheva", "chennai", "kolkata",
        "mundra", "karachi", "chittagong", "yangon", "jeddah", "dammam", "bandar_abbas",
        "istanbul", "mersin", "piraeus", "valencia", "algeciras", "felixstowe", "le_havre",
        "genoa", "novorossiysk", "vladivostok", "st_petersburg", "los_angeles",
        "long_beach", "new_york", "houston", "santos", "durban", "mombasa", "lagos",
        "tokyo", "yokohama", "kobe", "osaka", "nagoya",
    )
)  # fmt: skip

# --- text -----------------------------------------------------------------------------

_BRACKETS = re.compile(r"[(\[{（【]([^)\]}）】]*)[)\]}）】]?")
_FORMER = re.compile(
    r"^\s*(?:ex|formerly|former(?:ly)?\s+known\s+as|former\s+name|f/?k/?a|prev(?:iously)?)"
    r"\b[\s.:\-]*",
    re.IGNORECASE,
)
_FORMER_INLINE = re.compile(r"\s(?:f/k/a|fka|formerly\s+known\s+as|formerly)\s+", re.IGNORECASE)
_LABEL = re.compile(r"^\s*[^\W\d_][^\W\d_ /.&-]*(?:[ /.&-][^\W\d_]+){0,2}\s*:\s*")
_APOSTROPHES = re.compile(r"['’ʼ`´ʻʿʾ]")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_HYPHENS = re.compile(r"(?<![0-9a-z])((?:[0-9a-z]+[-‐‑–])+[0-9a-z]+)")

_SPOOF = icu.SpoofChecker()


_PARTICLE = re.compile(rf"^(?:{_PARTICLES})$")
_DASHES = re.compile(r"[-‐‑–]")


def _join_hyphenated(match: re.Match[str]) -> str:
    parts = _DASHES.split(match.group(1))
    out = parts[0]
    for prev, part in itertools.pairwise(parts):
        out += (" " if _PARTICLE.match(prev) else "") + part
    return out


def comparable_variants(name: str) -> list[str]:
    """The name with bracketed notes and a leading label removed, then each former name
    it gives ("X (ex-Y)" -> ["X", "Y"]). Never empty; never raises."""
    text = unicodedata.normalize("NFKC", name)
    variants: list[str] = []
    for note in _BRACKETS.findall(text):
        former = _FORMER.match(note)
        if former:
            variants.append(note[former.end() :])
    text = _BRACKETS.sub(" ", text)
    main, *formers = _FORMER_INLINE.split(text)
    variants = [main, *formers, *variants]
    return [_LABEL.sub("", v, count=1) if _LABEL.match(v) else v for v in variants]


def _script(ch: str) -> str:
    return unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]


@functools.lru_cache(maxsize=8192)
def _latin_lookalike(ch: str) -> str:
    """The one ASCII letter `ch` is confusable with (UTS #39 skeleton), else `ch`."""
    for form in (ch, ch.upper()):
        skeleton: str = _SPOOF.getSkeleton(0, form)
        if len(skeleton) == 1 and skeleton.isascii() and skeleton.isalpha():
            return skeleton.casefold()
    return ch


# anyascii writes nothing for Arabic alif and an apostrophe for alif with hamza; alif is
# the long vowel a (ICU's Any-Latin agrees: "بشار الأسد" is "bshar alasd").
_ALIF = {"ا": "a", "أ": "a", "إ": "i", "ٱ": "a"}


# Greek digraphs that write one sound: ντ is d, μπ is b, γκ is g, ου is u.
_GREEK_DIGRAPHS = re.compile("ντ|μπ|γκ|ου")
_GREEK_SOUNDS = {"ντ": "d", "μπ": "b", "γκ": "g", "ου": "u"}


@functools.lru_cache(maxsize=8192)
def _to_ascii(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    if category[0] in "PZ":  # "・" and other scripts' punctuation separate words
        return " "
    out = _ALIF.get(ch) or anyascii(ch).casefold()
    # One Han character is one syllable and one token (there are no spaces to keep).
    return f" {out} " if out and _script(ch) == "CJK" else out


def _fold(text: str) -> str:
    """Case-folded text in ASCII: look-alikes in mixed-script names, transliteration
    of everything else."""
    text = text.casefold()
    if text.isascii():
        return text
    letters = {_script(ch) for ch in text if ch.isalpha() and not ch.isascii()}
    if any("a" <= ch <= "z" for ch in text) and letters - {"LATIN"}:
        text = "".join(ch if ch.isascii() else _latin_lookalike(ch) for ch in text)
    if "GREEK" in letters:
        text = _GREEK_DIGRAPHS.sub(lambda m: _GREEK_SOUNDS[m.group(0)], text)
    return "".join(ch if ch.isascii() else _to_ascii(ch) for ch in text)


@functools.lru_cache(maxsize=1024)
def _is_legal_form(word: str) -> bool:
    return any(match.strip() == word for match, _ in extract_org_types(word))


def _join_initials(tokens: list[str], *, join_pairs: bool = False) -> list[str]:
    """Runs of three or more one-character tokens are an initialism ("l l c" -> "llc",
    "I.B.M." -> "ibm"), and so are two that spell a legal form ("a s", "k k"); other
    pairs and lone letters stay apart, as a person's initials ("V. V. Putin") or a
    distinguishing letter ("Ore I" is not "Ore II"), unless `join_pairs`."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        word = "".join(run)
        if len(run) > 2 or (len(run) == 2 and (join_pairs or _is_legal_form(word))):
            out.append(word)
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return out


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


def _port_at(tokens: list[str], end: int) -> int:
    """Length of a port name ending just before `end`, or 0."""
    for size in (3, 2, 1):
        if end - size >= 1 and tuple(tokens[end - size : end]) in _PORTS:
            return size
    return 0


@dataclass(frozen=True)
class ComparableName:
    """A name ready to compare: `tokens` are scored, `distinguishing` are compared
    exactly (numerals, Roman numerals, single letters, branch and port words), and
    `generic` are the business descriptors set aside (sorted, without repeats)."""

    tokens: tuple[str, ...]
    distinguishing: tuple[str, ...]
    generic: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Tokens joined by spaces, abbreviations expanded (the word-order-free form)."""
        return " ".join(self.tokens)

    @property
    def compact(self) -> str:
        """Tokens run together (the spacing-free form)."""
        return "".join(self.tokens)

    @property
    def blank(self) -> bool:
        """Empty, or one stop or generic word: such a name matches nothing."""
        return not self.tokens or (
            len(self.tokens) == 1
            and not self.distinguishing
            and (self.tokens[0] in _GENERIC or self.tokens[0] in _BLANK_WORDS)
        )


def _split_distinguishing(tokens: list[str]) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    marks: list[str] = []
    end = len(tokens)
    # A port at the end ("... Qingdao"), or a place before "branch" or "office".
    while end > 1:
        if tokens[end - 1] in _BRANCH_WORDS:
            marks.append(tokens[end - 1])
            end -= 1
            continue
        size = _port_at(tokens, end)
        if not size:
            break
        marks.append(" ".join(tokens[end - size : end]))
        end -= size
    for i, token in enumerate(tokens[:end]):
        if token in _BRANCH_WORDS:
            marks.append(token)
            size = _port_at([*kept, ""], len(kept))  # place just before the word
            if size and len(kept) > size:
                marks.append(" ".join(kept[-size:]))
                del kept[-size:]
        elif (
            token.isdigit()
            or (len(token) == 1)
            or (token in _ROMAN_NUMERALS and i > 0)
            or (token == "no" and i + 1 < end and tokens[i + 1].isdigit())  # noqa: S105
        ):
            marks.append(token.lstrip("0") or "0" if token.isdigit() else token)
        else:
            kept.append(token)
    return kept, marks


def _remove_org_types(text: str) -> str:
    """`rigour`'s organisation types removed, except those that read as Roman numerals
    (its table holds "ii", and "Nordic Ore II" is not "Nordic Ore")."""
    found = {m for m, _ in extract_org_types(text) if m.strip() not in _ROMAN_NUMERALS}
    for match in sorted(found, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(match)}(?!\w)", " ", text)
    return text


@functools.lru_cache(maxsize=65536)
def comparable_name(name: str, *, join_pairs: bool = False) -> ComparableName:
    """The comparable form of one name variant (see `comparable_variants`): the module
    docstring gives the steps. `join_pairs` reads two lone letters as one word ("D.E.
    Diamonds" as "DE Diamonds") rather than as initials. Never raises."""
    text = unicodedata.normalize("NFKC", name).casefold()
    # Legal forms in the name's own script, before transliteration loses them.
    text = _remove_org_types(_APOSTROPHES.sub("", text))
    text = _fold(text).replace("&", " and ")
    # "Novo-tech", "Jay-Ushin", "L-3" are one word each; "al-Zumar", "Abu-Marzuq" two.
    text = _HYPHENS.sub(_join_hyphenated, _APOSTROPHES.sub("", text))
    text = _remove_org_types(_NOT_ALNUM.sub(" ", text))
    # Joined initialisms may be legal forms ("A/S", "K.K.", "L.L.C."): removed here.
    text = _remove_org_types(" ".join(_join_initials(text.split(), join_pairs=join_pairs)))
    words = [_ROMANISATION.get(t, t) for t in text.split()]
    words = [t for t in _drop_legal_forms(words) if t not in _STOP_WORDS or t.isdigit()]
    kept, marks = _split_distinguishing(words)
    kept = [_ABBREVIATIONS.get(t, t) for t in kept]
    specific = [t for t in kept if t not in _GENERIC]
    if not specific:  # nothing but descriptors: they are the name
        return ComparableName(tuple(kept), tuple(sorted(marks)))
    generic = tuple(sorted({t for t in kept if t in _GENERIC}))
    return ComparableName(tuple(specific), tuple(sorted(marks)), generic)


def distinguished(a: ComparableName, b: ComparableName) -> bool:
    """Whether two names differ in what tells legal persons apart: their distinguishing
    tokens, their business descriptors ("Jay Ushin" / "Jay Ushin Electronics"), or one
    letter in a word."""
    return (
        a.distinguishing != b.distinguishing
        or a.generic != b.generic
        or differs_by_one_letter(a, b)
    )


def differs_by_one_letter(a: ComparableName, b: ComparableName) -> bool:
    """Whether a token of one name and a token of the other, each missing from the other
    name, have the same length and differ in exactly one letter ("Fat" / "Tat")."""
    only_a = set(a.tokens) - set(b.tokens)
    only_b = set(b.tokens) - set(a.tokens)
    return any(
        len(x) == len(y) and sum(p != q for p, q in zip(x, y, strict=True)) == 1
        for x in only_a
        for y in only_b
    )

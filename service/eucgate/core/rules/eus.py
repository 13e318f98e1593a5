"""EUS: end use and end-use statements."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from eucgate.core.checks import Finding, NoParams
from eucgate.core.model import (
    EndUseCategory,
)
from eucgate.core.rules.context import RuleContext, check, normalize_name


@check("end_use_permitted", NoParams)
def end_use_permitted(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The declared end-use category may not be one the bundle prohibits."""
    category = ctx.certificate.end_use.category
    if category not in ctx.bundle.prohibited_end_uses:
        return []
    return [Finding("end_use.category", f"{category.value} is a prohibited end use")]


def _phrases_in(text: str, phrases: Sequence[str]) -> list[str]:
    """The phrases that occur in `text` as whole words (plurals included), compared
    after case folding: "missiles" matches "missile", "Stockholm" does not match "stock"."""
    folded = normalize_name(text)
    found = []
    for phrase in phrases:
        first_word, pattern = _phrase_pattern(phrase)
        # The pattern needs the first word as it stands: most phrases fail this cheap test.
        if first_word in folded and pattern.search(folded):
            found.append(phrase)
    return found


@functools.lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> tuple[str, re.Pattern[str]]:
    """Compiled once per phrase: the bundle's phrases are few and every decision asks."""
    words = normalize_name(phrase).split()
    joined = r"\s+".join(re.escape(w) for w in words)
    return (words[0] if words else ""), re.compile(rf"(?<![\w-]){joined}(?:s|es)?(?![\w-])")


@check("end_use_statement_clean", NoParams)
def end_use_statement_clean(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The end-use statement may not mention a phrase the bundle screens for."""
    hits = _phrases_in(ctx.certificate.end_use.statement, ctx.bundle.prohibited_end_use_phrases)
    if not hits:
        return []
    return [Finding("end_use.statement", f"mentions {', '.join(repr(h) for h in hits)}")]


class VagueEndUseParams(BaseModel):
    """What makes an end use too vague to judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: tuple[EndUseCategory, ...] = ()
    phrases: tuple[str, ...] = ()
    min_words: int = Field(default=0, ge=0)


@check("end_use_specific", VagueEndUseParams)
def end_use_specific(ctx: RuleContext, params: VagueEndUseParams) -> list[Finding]:
    """The end use must say what the goods become: not trading, stock or resale."""
    end_use = ctx.certificate.end_use
    findings = []
    if end_use.category in params.categories:
        findings.append(Finding("end_use.category", f"{end_use.category.value} names no end use"))
    hits = _phrases_in(end_use.statement, params.phrases)
    if hits:
        findings.append(
            Finding("end_use.statement", f"says only {', '.join(repr(h) for h in hits)}")
        )
    elif len(end_use.statement.split()) < params.min_words:
        findings.append(
            Finding(
                "end_use.statement",
                f"has {len(end_use.statement.split())} words; at least {params.min_words} "
                "are needed to say what the goods are used for",
            )
        )
    return findings

"""Pydantic field types shared by the policy bundle and the screening lists it holds."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, StrictStr

_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    # Only a calendar date or its ISO text: lax pydantic would also read integers as
    # Unix times, which no policy author means.
    if isinstance(value, datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE_RE.fullmatch(value):
        return date.fromisoformat(value)
    raise ValueError("must be a date written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]

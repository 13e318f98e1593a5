"""The registry of rule checks: name -> (parameter model, function).

It imports neither the bundle nor the rules, and the bundle schema does not import it:
`core.bundleload` passes it to `validate_bundle`, which refuses an unknown check or bad
parameters at load, and `core.rules` fills it (importing `eucgate.core` imports the
rules, so the registry is full before any bundle is validated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Finding:
    """One violation: the certificate field it concerns ("" for the envelope) and why."""

    field: str
    detail: str


class NoParams(BaseModel):
    """For checks that take no parameters: any parameter given is refused at load."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Check:
    """A registered check: its function (taking the rule context and its parameters)
    and the pydantic model of its parameters."""

    name: str
    params: type[BaseModel]
    function: Callable[[Any, Any], list[Finding]]


CHECKS: dict[str, Check] = {}


def register(
    name: str, params: type[BaseModel], function: Callable[[Any, Any], list[Finding]]
) -> None:
    """Register a check under `name`; raises ValueError on reuse."""
    if name in CHECKS:
        raise ValueError(f"check {name!r} is registered twice")
    CHECKS[name] = Check(name=name, params=params, function=function)

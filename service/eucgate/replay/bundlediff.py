"""What changed between two policy bundles, rule by rule and setting by setting.

A what-if replay says which decisions a candidate bundle would change; this says why
from the policy's side: rules added, removed or changed (which of their keys), and
every other setting that differs (a parameter, a licensed importer's quota, a
screening list), as paths into the canonical JSON. Pure: two canonical documents in,
a list of changes out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Lists of objects are matched by the first of these keys their items all carry, so a
# reordered or extended list reads as the items that changed, not as every index.
_ID_KEYS = ("id", "licence_number", "control_code", "hs_code", "name", "fingerprint")
MAX_CHANGES = 200


@dataclass(frozen=True)
class Change:
    """One difference: `kind` is "added", "removed" or "changed"; `path` is where in
    the bundle ("rules[QTY-001]", "parameters.max_validity_days",
    "licensed_importers[MOFCOM-EL-2025-000417].quotas[1C904].quantity")."""

    section: str
    path: str
    kind: str
    before: str = ""
    after: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "section": self.section,
            "path": self.path,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }


def diff_bundles(before: bytes, after: bytes) -> list[Change]:
    """The changes from `before` to `after` (canonical JSON bytes): rules first, then the
    other sections in key order; at most MAX_CHANGES. Raises ValueError for non-JSON."""
    old, new = json.loads(before), json.loads(after)
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise ValueError("a bundle is a JSON object")
    changes = _rules(old.get("rules") or [], new.get("rules") or [])
    for key in sorted((set(old) | set(new)) - {"rules", "tests", "description"}):
        _walk(key, key, old.get(key), new.get(key), changes)
    return changes[:MAX_CHANGES]


def _rules(old: list[Any], new: list[Any]) -> list[Change]:
    before = {r.get("id"): r for r in old if isinstance(r, dict)}
    after = {r.get("id"): r for r in new if isinstance(r, dict)}
    changes = []
    for rule_id in sorted(set(before) | set(after), key=str):
        a, b = before.get(rule_id), after.get(rule_id)
        path = f"rules[{rule_id}]"
        if a is None and b is not None:
            changes.append(Change("rules", path, "added", after=_outcome(b), detail=_brief(b)))
        elif b is None and a is not None:
            changes.append(Change("rules", path, "removed", before=_outcome(a), detail=_brief(a)))
        elif a != b and a is not None and b is not None:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            shown = [
                f"{k}: {_short(a.get(k))} -> {_short(b.get(k))}" for k in keys if k != "message"
            ]
            if "message" in keys:
                shown.append("message reworded")
            changes.append(
                Change(
                    "rules",
                    path,
                    "changed",
                    before=_outcome(a),
                    after=_outcome(b),
                    detail="; ".join(shown),
                )
            )
    return changes


def _walk(section: str, path: str, a: Any, b: Any, out: list[Change]) -> None:
    if a == b or len(out) >= MAX_CHANGES:
        return
    if a is None:
        out.append(Change(section, path, "added", after=_short(b)))
    elif b is None:
        out.append(Change(section, path, "removed", before=_short(a)))
    elif isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            _walk(section, f"{path}.{key}", a.get(key), b.get(key), out)
    elif isinstance(a, list) and isinstance(b, list) and (key := _id_key(a + b)):
        left = {_label(x, key): x for x in a}
        right = {_label(x, key): x for x in b}
        for label in sorted(set(left) | set(right)):
            _walk(section, f"{path}[{label}]", left.get(label), right.get(label), out)
    elif isinstance(a, list) and isinstance(b, list) and _scalars(a + b):
        gone = sorted(map(str, set(map(_hashable, a)) - set(map(_hashable, b))))
        new = sorted(map(str, set(map(_hashable, b)) - set(map(_hashable, a))))
        detail = "; ".join(
            part
            for part in (
                f"{len(new)} added: {', '.join(new[:5])}" if new else "",
                f"{len(gone)} removed: {', '.join(gone[:5])}" if gone else "",
            )
            if part
        )
        out.append(Change(section, path, "changed", detail=detail or "order changed"))
    else:
        out.append(Change(section, path, "changed", before=_short(a), after=_short(b)))


def _id_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    for key in _ID_KEYS:
        labels = [x.get(key) for x in items]
        if all(isinstance(v, str) and v for v in labels):
            return key
    return None


def _label(item: dict[str, Any], key: str) -> str:
    return str(item[key])


def _scalars(items: list[Any]) -> bool:
    return all(not isinstance(x, dict | list) for x in items)


def _hashable(x: Any) -> Any:
    return x if not isinstance(x, dict | list) else json.dumps(x, sort_keys=True)


def _outcome(rule: dict[str, Any]) -> str:
    return str(rule.get("outcome", ""))


def _brief(rule: dict[str, Any]) -> str:
    return f"{rule.get('family', '')} {rule.get('check', '')}".strip()


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"

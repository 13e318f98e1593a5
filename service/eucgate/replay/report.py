"""The replay report as one self-contained HTML file: nothing is fetched at view time.

Made from the summary's JSON document (`ReplaySummary.to_json`), so the page and
`--json` never disagree. Styles and charts are inline (SVG drawn here, no script);
every value from the log is escaped.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
th,td{border-bottom:1px solid #dde1e8;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;gap:1em;flex-wrap:wrap}
.tile{border:1px solid #dde1e8;border-radius:6px;padding:.6em 1em;min-width:9em}
.tile b{display:block;font-size:1.6em}.ok{color:#1b7f3b}.bad{color:#b3261e}
.warn{color:#9a6700}code{font-size:.92em}details{margin:.4em 0}
.APPROVED{color:#1b7f3b}.REJECTED{color:#b3261e}.REFERRED{color:#9a6700}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _tile(label: str, value: Any, css: str = "") -> str:
    slug = _e(label.replace(" ", "-"))
    return f'<div class="tile"><b class="{css}" id="fig-{slug}">{_e(value)}</b>{_e(label)}</div>'


def bar_chart(rows: list[tuple[str, int]], title: str, *, color: str = "#3b6fd8") -> str:
    """A horizontal bar chart as inline SVG; one bar per (label, count)."""
    if not rows:
        return f"<p>No {escape(title.lower())}.</p>"
    top = max(n for _, n in rows) or 1
    height = 24 * len(rows) + 10
    bars = []
    for i, (label, n) in enumerate(rows):
        y = 5 + 24 * i
        width = max(1, round(460 * n / top))
        bars.append(
            f'<text x="0" y="{y + 15}" font-size="12">{_e(label)}</text>'
            f'<rect x="230" y="{y}" width="{width}" height="18" fill="{color}">'
            f"<title>{_e(label)}: {n}</title></rect>"
            f'<text x="{236 + width}" y="{y + 14}" font-size="12">{n}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(title)}" '
        f'width="760" height="{height}" viewBox="0 0 760 {height}">{"".join(bars)}</svg>'
    )


DATE_LABEL_WIDTH = 64  # a YYYY-MM-DD label at 11px, measured in Chromium, rounded up
DATE_LABEL_GAP = 24


def time_chart(days: list[dict[str, Any]], changed: str = "changed") -> str:
    """Decisions per day (grey) with those that `changed` (red) as inline SVG columns,
    with a legend, a count axis, and as many date labels as fit without touching."""
    if not days:
        return "<p>No decisions in range.</p>"
    top = max(d["decisions"] for d in days) or 1
    left, plot, base = 48, 680, 190
    step = plot / len(days)
    bar = max(1.0, step - 2) if step > 3 else step
    cols = []
    for i, day in enumerate(days):
        x = left + i * step
        total = round(150 * day["decisions"] / top)
        found = round(150 * day["findings"] / top)
        cols.append(
            f'<rect x="{x:.1f}" y="{base - total}" width="{bar:.1f}" height="{total}" '
            f'fill="#c9ced8"><title>{_e(day["day"])}: {day["decisions"]} decisions</title></rect>'
            f'<rect x="{x:.1f}" y="{base - found}" width="{bar:.1f}" height="{found}" '
            f'fill="#d93025"><title>{_e(day["day"])}: {day["findings"]} {changed}</title></rect>'
        )
    # Date labels: every k-th day, k chosen so that neighbouring labels keep a gap.
    every = max(1, -(-(DATE_LABEL_WIDTH + DATE_LABEL_GAP) // max(1, int(step))))
    shown = list(range(0, len(days), every))
    labels = [
        f'<text class="date" x="{left + i * step + step / 2:.1f}" y="{base + 20}" '
        f'font-size="11" text-anchor="middle">{_e(days[i]["day"])}</text>'
        for i in shown
    ]
    width, height = left + plot + 40, base + 30
    legend = (
        f'<g class="legend"><rect x="{left}" y="4" width="12" height="12" fill="#c9ced8"/>'
        f'<text x="{left + 18}" y="14" font-size="12">decisions replayed</text>'
        f'<rect x="{left + 170}" y="4" width="12" height="12" fill="#d93025"/>'
        f'<text x="{left + 188}" y="14" font-size="12">decisions {_e(changed)}</text></g>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="decisions over time" '
        f'id="time-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"{legend}"
        f'<text x="{left - 6}" y="{base - 150 + 4}" font-size="11" text-anchor="end">{top}</text>'
        f'<text x="{left - 6}" y="{base}" font-size="11" text-anchor="end">0</text>'
        f'<line x1="{left}" y1="{base - 150}" x2="{left}" y2="{base}" stroke="#888"/>'
        f'<line x1="{left}" y1="{base}" x2="{left + plot}" y2="{base}" stroke="#888"/>'
        f"{''.join(cols)}{''.join(labels)}</svg>"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _bundle_section(doc: dict[str, Any], what_if: bool) -> list[str]:
    """Both bundles by name and digest, and (what-if) what the candidate changes."""
    bundles = doc.get("bundles") or {}
    recorded = bundles.get("recorded") or []
    parts = [
        '<h2>Policy bundles</h2><table id="bundles"><tr><th>role</th><th>name</th>'
        "<th>digest</th><th>decisions</th></tr>"
    ]
    for b in recorded:
        parts.append(
            f"<tr><td>recorded</td><td>{_e(b['name'] or '(not at hand)')}</td>"
            f'<td><code>{_e(b["digest"])}</code></td><td class="n">{b["decisions"]}</td></tr>'
        )
    candidate = bundles.get("candidate")
    if candidate:
        parts.append(
            f"<tr><td>candidate</td><td>{_e(candidate['name'])}</td>"
            f"<td><code>{_e(candidate['digest'])}</code></td><td></td></tr>"
        )
    parts.append("</table>")
    if not what_if:
        return parts
    diff = bundles.get("diff") or []
    if not bundles.get("diff_base"):
        parts.append(
            "<p>What the candidate changes in the policy is not shown: the recorded bundle "
            "was not at hand (give it with <code>--bundle</code>).</p>"
        )
    elif not diff:
        parts.append("<p>The candidate holds the same rules and settings.</p>")
    else:
        parts += [
            f"<h3>What the candidate changes ({_plural(len(diff), 'change')})</h3>",
            '<table id="bundle-diff"><tr><th>section</th><th>where</th><th>change</th>'
            "<th>recorded</th><th>candidate</th><th>detail</th></tr>",
            *(
                f"<tr><td>{_e(c['section'])}</td><td><code>{_e(c['path'])}</code></td>"
                f"<td>{_e(c['kind'])}</td><td>{_e(c['before'])}</td><td>{_e(c['after'])}</td>"
                f"<td>{_e(c['detail'])}</td></tr>"
                for c in diff
            ),
            "</table>",
        ]
    return parts


def _reasons(brief: dict[str, Any] | None) -> str:
    if brief is None:
        return ""
    return ", ".join(f"{_e(r[0])} ({_e(r[1])})" for r in brief["reasons"]) or "none"


def render_html(doc: dict[str, Any]) -> str:
    """The report page for a summary document; pure."""
    counts = doc["counts"]
    what_if = doc["mode"] == "what-if"
    log = doc["log"]
    failure = log.get("failure")
    if failure:
        log_line = (
            f'<p class="bad">The log FAILED its check at index {_e(failure["index"])}: '
            f"<code>{_e(failure['reason'])}</code> {_e(failure['message'])}</p>"
        )
    elif log.get("verified"):
        log_line = (
            f'<p class="ok">Log verified: {_e(log.get("tree_size"))} entries under the '
            f"checkpoint of <code>{_e(log.get('origin', ''))}</code>, root "
            f"<code>{_e(log.get('root', ''))}</code>.</p>"
        )
    else:
        log_line = f'<p class="warn">Log not verified. {_e(log.get("note", ""))}</p>'
    title = "What-if replay" if what_if else "Exact replay"
    resume = doc.get("resume_index", doc["next_index"])
    stopped = f" (stopped early; resume from {_e(resume)})" if doc["interrupted"] else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>eucgate {title.lower()}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
    ]
    if what_if:
        parts.append(
            "<p>The candidate bundle replayed over the recorded inputs of every decision, "
            "with its own quotas.</p>"
        )
    parts += [
        log_line,
        f"<p>Entries {_e(doc['first_index'])} to {_e((doc['next_index'] or 1) - 1)}{stopped}.</p>",
        '<h2>Summary</h2><div class="tiles">',
        _tile("decisions replayed", counts["replayed"]),
        _tile(
            "would change" if what_if else "differences",
            counts["findings"],
            "bad" if counts["findings"] else "ok",
        ),
        _tile("not replayable", counts["problems"], "bad" if counts["problems"] else "ok"),
        _tile("exit code", doc["exit_code"]),
        "</div>",
    ]
    for kind, n in counts["skipped_kinds"].items():
        parts.append(
            f"<p>{_plural(n, 'entry').replace('entrys', 'entries')} of kind "
            f"<code>{_e(kind)}</code> record no decision.</p>"
        )
    resolutions = doc.get("resolutions") or {}
    if resolutions:
        made = ", ".join(f"{_e(k)} {v}" for k, v in resolutions.items())
        parts.append(
            f"<p>{_plural(sum(resolutions.values()), 'resolution')} by reviewers ({made}): "
            "persons' decisions, kept as recorded; their approvals count toward quotas.</p>"
        )
    parts += _bundle_section(doc, what_if)
    outcomes = doc["outcomes"]
    names = sorted(set(outcomes["before"]) | set(outcomes["after"]))
    parts += [
        "<h2>Outcomes before and after</h2>",
        '<table id="outcomes"><tr><th>outcome</th><th>recorded</th><th>replayed</th></tr>',
        *(
            f'<tr><td class="{_e(o)}">{_e(o)}</td><td class="n">{outcomes["before"].get(o, 0)}'
            f'</td><td class="n">{outcomes["after"].get(o, 0)}</td></tr>'
            for o in names
        ),
        "</table>",
    ]
    if outcomes["transitions"]:
        parts.append("<table><tr><th>recorded</th><th>replayed</th><th>decisions</th></tr>")
        parts += [
            f'<tr><td class="{_e(t["before"])}">{_e(t["before"])}</td>'
            f'<td class="{_e(t["after"])}">{_e(t["after"])}</td>'
            f'<td class="n">{t["count"]}</td></tr>'
            for t in outcomes["transitions"]
        ]
        parts.append("</table>")
    if what_if:
        groups = doc["rule_groups"]
        per_rule = Counter[str]()
        for g in groups:
            per_rule[g["rule_id"]] += g["count"]
        parts += [
            "<h2>Changes by rule</h2>",
            bar_chart(sorted(per_rule.items(), key=lambda kv: (-kv[1], kv[0])), "Changes by rule"),
        ]
        if groups:
            parts += [
                '<table id="rule-groups"><tr><th>rule</th><th>change</th><th>decisions</th></tr>',
                *(
                    f"<tr><td><code>{_e(g['rule_id'])}</code></td><td>{_e(g['change'])}: "
                    f'{_e(g["before"])} would be {_e(g["after"])}</td><td class="n">{g["count"]}'
                    "</td></tr>"
                    for g in groups
                ),
                "</table>",
            ]
    else:
        reasons = sorted(counts["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        parts += ["<h2>Findings and problems by reason</h2>", bar_chart(reasons, "Reasons")]
    parts += [
        "<h2>Over time</h2>",
        time_chart(doc["by_day"], "that would change" if what_if else "that differ"),
    ]
    quota = doc["quota"]
    if what_if and quota["licences"]:
        parts += [
            "<h2>Quota consequences per licence</h2>",
            f"<p>{_e(quota['note'])}</p>",
            '<table id="quota"><tr><th>licence</th><th>control code</th><th>unit</th>'
            "<th>approved, recorded</th><th>approved, replayed</th><th>change</th></tr>",
            *(
                f"<tr><td>{_e(q['licence_number'] or '(none)')}</td>"
                f"<td>{_e(q['control_code'] or '(uncontrolled)')}</td><td>{_e(q['unit'])}</td>"
                f'<td class="n">{_e(q["approved_before"])}</td>'
                f'<td class="n">{_e(q["approved_after"])}</td>'
                f'<td class="n">{_e(q["change"])}</td></tr>'
                for q in quota["licences"]
            ),
            "</table>",
        ]
    parts += _findings_section(doc, what_if)
    if doc["problems"]:
        parts += [
            "<h2>Entries not replayed</h2>",
            '<table id="problems"><tr><th>index</th><th>reason</th><th>message</th></tr>',
            *(
                f'<tr><td class="n">{p["index"]}</td><td><code>{_e(p["reason"])}</code></td>'
                f"<td>{_e(p['message'])}</td></tr>"
                for p in doc["problems"]
            ),
            "</table>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _findings_section(doc: dict[str, Any], what_if: bool) -> list[str]:
    """The changed (or differing) decisions: a table, then each one's details."""
    counts = doc["counts"]
    parts: list[str] = []
    findings = doc["findings"]
    parts.append(f"<h2>{'Changed' if what_if else 'Differing'} decisions</h2>")
    if not findings:
        parts.append(
            "<p>No decision would change.</p>"
            if what_if
            else "<p>Every decision replayed to the recorded bytes.</p>"
        )
    else:
        parts += [
            f"<p>Listed: {doc['findings_listed']} of {counts['findings']}.</p>",
            '<table id="changed"><tr><th>index</th><th>decision</th><th>decided at</th>'
            "<th>certificate</th><th>recorded</th><th>replayed</th></tr>",
        ]
    for f in findings:
        before = f["recorded"]["outcome"] if f["recorded"] else ""
        after = f["replayed"]["outcome"] if f["replayed"] else ""
        parts.append(
            f'<tr><td class="n"><a href="#entry-{f["index"]}">{f["index"]}</a></td>'
            f"<td><code>{_e(f['decision_id'])}</code></td><td>{_e(f['decided_at'])}</td>"
            f"<td>{_e(f['certificate_number'])}</td>"
            f'<td class="{_e(before)}">{_e(before)}</td><td class="{_e(after)}">{_e(after)}</td>'
            "</tr>"
        )
    if findings:
        parts.append("</table><h2>Details</h2>")
    for f in findings:
        diffs = "".join(
            f"<tr><td><code>{_e(p)}</code></td><td><code>{_e(a)}</code></td>"
            f"<td><code>{_e(b)}</code></td></tr>"
            for p, a, b in f["diffs"]
        )
        parts.append(
            f'<details id="entry-{f["index"]}"><summary>Entry {f["index"]}, '
            f"<code>{_e(f['decision_id'])}</code>: {_e(f['message'] or f['status'])}</summary>"
            f"<p>Recorded reasons: {_reasons(f['recorded'])}<br>"
            f"Replayed reasons: {_reasons(f['replayed'])}</p>"
            + (
                f"<table><tr><th>field</th><th>recorded</th><th>replayed</th></tr>{diffs}</table>"
                if diffs
                else ""
            )
            + "</details>"
        )
    return parts

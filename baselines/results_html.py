"""``report.html``: the results as one static page that opens offline in any browser.

Self-contained: inline CSS, the plot embedded as a base64 ``data:`` URI, no scripts and no
external fetches. Sections: the labels, the table and its notes, the plot, the cross-play
matrix and the contribution table when given, sample answers, the run card. Every piece of
text is HTML-escaped: answers are untrusted model output.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from llm_marl.baselines.results_table import (
    ResultsTable,
    column_label,
    seeds_text,
    versus_text,
)
from llm_marl.baselines.stats import MeanCI

__all__ = ["ANSWER_CHARS", "report_html"]

#: Longer sample answers are cut to this many characters in the report.
ANSWER_CHARS = 1500
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:80em;
  padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.name,th.name{text-align:left}tr.ref{background:#fff6e5}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
dd{margin:0}.scroll{overflow-x:auto}small{color:#555}.notes{font-size:.85em;color:#444}img{max-width:100%}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6em;white-space:pre-wrap;
  word-break:break-word;font-size:.85em}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}
"""


# The page may load nothing: no scripts, no fetches; images only from data: URIs.
_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'\">"
)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], ref_row: int = -1) -> str:
    """An HTML table of escaped headings and ``rows`` of HTML cells (the callers escape them);
    the first column is a name; row ``ref_row`` is highlighted."""
    out = ['<div class="scroll"><table><thead><tr>']
    out += [
        f'<th class="{"name" if i == 0 else "num"}">{escape(h)}</th>' for i, h in enumerate(head)
    ]
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(rows):
        out.append('<tr class="ref">' if r == ref_row else "<tr>")
        out += [
            f'<td class="name">{c}</td>' if i == 0 else f"<td>{c}</td>" for i, c in enumerate(row)
        ]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _escaped(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    return [[escape(c) for c in row] for row in rows]


def _value(ci: MeanCI) -> str:
    """The mean, and the interval in small type below it (keeps the table narrow)."""
    if math.isnan(ci.mean):
        return "n/a"
    mean, _, interval = ci.format().partition(" ")
    return f"{escape(mean)}<br><small>{escape(interval)}</small>"


def _results_section(result: ResultsTable) -> str:
    head = ["method", "kind (protocol)", "seeds", *map(column_label, result.metrics)]
    if result.reference is not None:
        head.append(f"vs {result.reference} ({column_label(result.primary)})")
    rows, ref = [], -1
    for i, row in enumerate(result.rows):
        cells = [
            escape(row.method),
            escape(f"{row.kind} ({row.protocol})"),
            escape(seeds_text(row, len(result.seeds))),
            *(_value(row.values[m]) for m in result.metrics),
        ]
        if result.reference is not None:
            diff, comma, test = versus_text(row, result.reference).rpartition(", ")
            cells.append(
                f"{escape(diff)}<br><small>{escape(test)}</small>" if comma else escape(test)
            )
        ref = i if row.method == result.reference else ref
        rows.append(cells)
    notes = "".join(f"<li>{escape(note)}</li>" for note in result.notes)
    return f"<h2>Results</h2>{_table(head, rows, ref)}<ul class='notes'>{notes}</ul>"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _crossplay_section(crossplay: Mapping[str, Any]) -> str:
    sources = [str(s) for s in crossplay["sources"]]
    head = [f"{crossplay['row_agent']} \\ {crossplay['col_agent']}", *sources]
    rows = [
        [src, *map(_number, values)]
        for src, values in zip(sources, crossplay["matrix"], strict=True)
    ]
    caption = (
        f"{crossplay['method']}: {column_label(crossplay['metric'])} when "
        f"{crossplay['row_agent']} (rows) and {crossplay['col_agent']} (columns) come from "
        "the given sources."
    )
    return f"<h2>Cross-play</h2><p>{escape(caption)}</p>{_table(head, _escaped(rows))}"


def _contribution_section(contribution: Mapping[str, Any]) -> str:
    without = contribution["without"]
    variants = list(dict.fromkeys(v for parts in without.values() for v in parts))
    head = ["agent replaced", *(f"by {v}" for v in variants)]
    rows = [["none (full team)", *(_number(contribution["full"]) for _ in variants)]]
    rows += [
        [agent, *(_number(parts.get(v)) for v in variants)] for agent, parts in without.items()
    ]
    caption = (
        f"{contribution['method']}: {column_label(contribution['metric'])} of the full "
        "team and with one agent's answers replaced."
    )
    table = _table(head, _escaped(rows))
    return f"<h2>Contribution of each agent</h2><p>{escape(caption)}</p>{table}"


def _answer(text: Any) -> str:
    text = str(text)
    if len(text) > ANSWER_CHARS:
        text = f"{text[:ANSWER_CHARS]}… ({len(text) - ANSWER_CHARS} more characters)"
    return f"<pre>{escape(text)}</pre>"


def _samples_section(
    cells: Sequence[Mapping[str, Any]], methods: Sequence[str], tasks_per_method: int
) -> str:
    out = [
        "<h2>Sample answers</h2><p class='notes'>The first sample of the first tasks of "
        "each method's lowest seed, as the model wrote them.</p>"
    ]
    for method in methods:
        mine = sorted((c for c in cells if c["method"] == method), key=lambda c: c["seed"])
        if not mine:
            continue
        out.append(f"<h3>{escape(method)} (seed {mine[0]['seed']})</h3>")
        for i, task in enumerate(mine[0]["tasks"][:tasks_per_method]):
            samples = task.get("samples") or []
            if not samples:
                continue
            sample = samples[0]
            title = f"{task['task_id']}: reward {_number(sample.get('reward'))}"
            out.append(f"<details{' open' if i == 0 else ''}><summary>{escape(title)}</summary>")
            terms = sample.get("terms") or {}
            if terms:
                line = " · ".join(f"{name} {_number(value)}" for name, value in terms.items())
                out.append(f"<p class='notes'>reward terms: {escape(line)}</p>")
            for agent, text in sample.get("answers", {}).items():
                out.append(f"<div><strong>{escape(str(agent))}</strong>{_answer(text)}</div>")
            out.append("</details>")
    return "".join(out)


def _card_section(card: Mapping[str, Any]) -> str:
    git = card.get("git")
    facts = {
        "git commit": (git["commit"] + (" (uncommitted changes)" if git["dirty"] else ""))
        if git
        else "none",
        **{name: version or "not installed" for name, version in card["packages"].items()},
        **{f"machine: {key}": str(value) for key, value in card["machine"].items()},
        "model sha256": card["model"]["sha256"] if card.get("model") else "none given",
        "data files": str(len(card["data"])),
    }
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts.items())
    return f"<h2>Run card</h2><dl>{items}</dl><p class='notes'>In full: run_card.md.</p>"


def report_html(
    result: ResultsTable,
    cells: Sequence[Mapping[str, Any]],
    *,
    plot: Path | None,
    card: Mapping[str, Any] | None = None,
    crossplay: Mapping[str, Any] | None = None,
    contribution: Mapping[str, Any] | None = None,
    tasks_per_method: int = 2,
) -> str:
    """The whole page, from the table, the cells (for sample answers) and the optional parts."""
    labels = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in result.labels.items())
    parts = [
        f"<h1>llm-marl reproduce: {escape(result.table)} table</h1><dl>{labels}</dl>",
        _results_section(result),
    ]
    if plot is not None:
        data = base64.b64encode(Path(plot).read_bytes()).decode("ascii")
        parts.append(
            "<h2>Primary metric and training curves</h2>"
            f'<img alt="bar chart and training curves" src="data:image/png;base64,'
            f'{data}">'
        )
    if crossplay is not None:
        parts.append(_crossplay_section(crossplay))
    if contribution is not None:
        parts.append(_contribution_section(contribution))
    parts.append(_samples_section(cells, [row.method for row in result.rows], tasks_per_method))
    if card is not None:
        parts.append(_card_section(card))
    title = escape(f"llm-marl results: {result.table}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{_CSP}'
        f"<title>{title}</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )

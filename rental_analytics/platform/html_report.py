"""Building blocks of the HTML reports: escaping, number formats, tiles, tables and inline SVG charts."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rental_analytics.platform.text import printable

# Amounts in the data carry no currency; the reports print this one unless told another (docs/reports.md).
DEFAULT_CURRENCY = "USD"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "GHS": "GH₵", "NGN": "₦", "INR": "₹"}
MISSING = "—"

# Kinds of value a table column or a chart holds; each has its own format.
TEXT, INTEGER, MONEY, PERCENT, NUMBER, HOURS = "text", "integer", "money", "percent", "number", "hours"
NAME = "name"  # text kept on one line, such as a file name
SHARE = "share"  # a percentage to two decimals, where 99.9% and 99.95% must read apart (thresholds)
_NUMERIC = {INTEGER, MONEY, PERCENT, SHARE, NUMBER, HOURS}

Rows = Sequence[Mapping[str, Any]]
TONE = "_tone"  # a row's key for "bad" or "good": the table colours that row


def esc(value: Any) -> str:
    """Text safe inside an element or a quoted attribute, and in UTF-8 (`printable`); None is shown as a dash."""
    return MISSING if value is None else html.escape(printable(value), quote=True)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Formats:
    """How numbers read on a page: integers and money with thousands separators, shares as percentages."""

    currency: str = DEFAULT_CURRENCY

    @property
    def symbol(self) -> str:
        """The currency's symbol, or its code and a space when it has none here."""
        return CURRENCY_SYMBOLS.get(self.currency.upper(), f"{self.currency} ")

    def integer(self, value: Any) -> str:
        """1,234."""
        number = _number(value)
        return MISSING if number is None else f"{round(number):,}"

    def money(self, value: Any) -> str:
        """$1,234.50, or -$3.00."""
        number = _number(value)
        if number is None:
            return MISSING
        return f"{'-' if number < 0 else ''}{self.symbol}{abs(number):,.2f}"

    def percent(self, value: Any, digits: int = 1) -> str:
        """A share (0.123) as 12.3%."""
        number = _number(value)
        return MISSING if number is None else f"{number * 100:,.{digits}f}%"

    def number(self, value: Any, digits: int = 1) -> str:
        """1,234.5."""
        number = _number(value)
        return MISSING if number is None else f"{number:,.{digits}f}"

    def hours(self, value: Any) -> str:
        """3.5 h."""
        number = _number(value)
        return MISSING if number is None else f"{number:,.1f} h"

    def value(self, kind: str, value: Any) -> str:
        """A value as its kind reads, not yet escaped."""
        if kind == INTEGER:
            return self.integer(value)
        if kind == MONEY:
            return self.money(value)
        if kind in (PERCENT, SHARE):
            return self.percent(value, 2 if kind == SHARE else 1)
        if kind == NUMBER:
            return self.number(value)
        if kind == HOURS:
            return self.hours(value)
        return MISSING if value is None or value == "" else str(value)

    def tick(self, kind: str, value: float) -> str:
        """An axis label, short: 12k, $1.5M, 7.5%, 0.25."""
        if kind in (PERCENT, SHARE):
            return f"{_trimmed(value * 100)}%"
        sign, prefix = "-" if value < 0 else "", self.symbol if kind == MONEY else ""
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{sign}{prefix}{_trimmed(abs(value) / size)}{suffix}"
        return f"{sign}{prefix}{_trimmed(abs(value))}"


def _trimmed(number: float) -> str:
    """1 rather than 1.0, 2.5 and 1.25 as they are."""
    return f"{number:,.2f}".rstrip("0").rstrip(".")


def humanize(name: str) -> str:
    """A column or reason code as words: unknown_location -> Unknown location."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@dataclass(frozen=True)
class Column:
    """One table column: the row's key, the header a person reads, and the kind of value."""

    key: str
    label: str
    kind: str = TEXT


def columns(keys: Sequence[str], labels: Mapping[str, str], kinds: Mapping[str, str]) -> list[Column]:
    """Columns for the keys, labelled from a pipeline's mapping of column names to headers."""
    return [Column(key, labels.get(key, humanize(key)), kinds.get(key, TEXT)) for key in keys]


def table(rows: Rows, cols: Sequence[Column], fmt: Formats, empty: str = "None.") -> str:
    """An HTML table; numbers are formatted and right-aligned, every value escaped."""
    if not rows:
        return f"<p class='empty'>{esc(empty)}</p>"
    head = "".join(f"<th class='{_align(c)}'>{esc(c.label)}</th>" for c in cols)
    body = "".join(
        f"<tr class='{esc(row.get(TONE) or '')}'>"
        + "".join(f"<td class='{_align(c)}'>{esc(fmt.value(c.kind, row.get(c.key)))}</td>" for c in cols)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _align(column: Column) -> str:
    if column.kind == NAME:
        return "txt name"
    return "num" if column.kind in _NUMERIC else "txt"


@dataclass(frozen=True)
class Tile:
    """A headline figure: what it is, its value (formatted), and a line of context."""

    label: str
    value: str
    note: str = ""
    tone: str = ""  # "good", "bad" or "" (neutral)


def tiles(items: Sequence[Tile]) -> str:
    """A grid of headline figures."""
    cells = "".join(
        f"<div class='tile {esc(t.tone)}'><div class='label'>{esc(t.label)}</div>"
        f"<div class='value'>{esc(t.value)}</div>"
        + (f"<div class='note'>{esc(t.note)}</div>" if t.note else "")
        + "</div>"
        for t in items
    )
    # Rows of equal length read better than a full row and a lone tile: 6 tiles are 3 and 3, not 5 and 1.
    per_row = len(items) if len(items) <= 4 else math.ceil(len(items) / math.ceil(len(items) / 4))
    return f"<div class='tiles c{per_row}'>{cells}</div>"


def facts(pairs: Sequence[tuple[str, str]]) -> str:
    """A list of named facts (already formatted text)."""
    items = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in pairs)
    return f"<dl class='facts'>{items}</dl>"


def _with_code(text: str) -> str:
    """Escaped text in which `quoted` parts (commands, paths) are set as code."""
    parts = esc(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def bullets(items: Sequence[str], ordered: bool = False, css: str = "") -> str:
    """A list of sentences; `quoted` parts are set as code."""
    tag = "ol" if ordered else "ul"
    css_attr = f" class='{esc(css)}'" if css else ""
    return f"<{tag}{css_attr}>" + "".join(f"<li>{_with_code(item)}</li>" for item in items) + f"</{tag}>"


def paragraph(text: str, css: str = "") -> str:
    """A paragraph of text."""
    css_attr = f" class='{esc(css)}'" if css else ""
    return f"<p{css_attr}>{esc(text)}</p>"


def section(title: str, *parts: str, intro: str = "") -> str:
    """A titled section of already built parts."""
    lead = paragraph(intro, "intro") if intro else ""
    return f"<section><h2>{esc(title)}</h2>{lead}{''.join(parts)}</section>"


def banner(status: str, message: str) -> str:
    """The run's verdict, coloured, with its message."""
    state = "succeeded" if status == "succeeded" else "failed"
    return f"<p class='banner {state}'><strong>{esc(status.upper())}</strong> {esc(message)}</p>"


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round axis ticks from at most `low` to at least `high` (1, 2, 2.5 or 5 times a power of ten apart)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    first, last = math.floor(low / step), math.ceil(high / step)
    return [i * step for i in range(first, last + 1)]


_INK, _GRID, _BAR, _AXIS = "#1f5fbf", "#e3e7ee", "#3b7dd8", "#5b6472"


def _svg(title: str, width: int, height: int, body: str) -> str:
    return (
        f"<figure class='chart'><svg role='img' aria-label='{esc(title)}' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}'><title>{esc(title)}</title>"
        f"<text x='0' y='16' class='ctitle'>{esc(title)}</text>{body}</svg></figure>"
    )


def _axis_title(x: float, y: float, text: str) -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' class='axis' text-anchor='middle'>{esc(text)}</text>"


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[Any],
    kind: str,
    fmt: Formats,
    axis_title: str = "",
    empty: str = "Nothing to chart yet.",
) -> str:
    """Horizontal bars with a value axis, tick labels and gridlines; the value at the end of each bar."""
    numbers = [_number(v) or 0.0 for v in values]
    if not numbers:
        return paragraph(empty, "empty")
    width, left, right, top, row = 930, 200, 100, 34, 26
    plot = width - left - right
    ticks = nice_ticks(min(numbers), max(numbers), whole=kind == INTEGER)
    low, span = ticks[0], ticks[-1] - ticks[0]
    bottom = top + row * len(numbers)
    height = bottom + (44 if axis_title else 28)

    def x(value: float) -> float:
        return left + plot * (value - low) / span

    parts = []
    for tick in ticks:
        parts.append(
            f"<line x1='{x(tick):.1f}' y1='{top - 4}' x2='{x(tick):.1f}' y2='{bottom}' stroke='{_GRID}'/>"
            f"<text x='{x(tick):.1f}' y='{bottom + 16}' class='tick' text-anchor='middle'>"
            f"{esc(fmt.tick(kind, tick))}</text>"
        )
    for i, (label, value) in enumerate(zip(labels, numbers)):
        y = top + i * row
        start, end = sorted((x(0.0), x(value)))
        parts.append(
            f"<text x='{left - 8}' y='{y + 15}' class='label' text-anchor='end'><title>{esc(label)}</title>"
            f"{esc(_short(str(label), 30))}</text>"
            f"<rect x='{start:.1f}' y='{y + 3}' width='{max(end - start, 1):.1f}' height='{row - 8}' "
            f"fill='{_BAR}' rx='2'/>"
            f"<text x='{end + 6:.1f}' y='{y + 15}' class='value'>{esc(fmt.value(kind, value))}</text>"
        )
    parts.append(f"<line x1='{x(0.0):.1f}' y1='{top - 4}' x2='{x(0.0):.1f}' y2='{bottom}' stroke='{_AXIS}'/>")
    if axis_title:
        parts.append(_axis_title(left + plot / 2, height - 6, axis_title))
    return _svg(title, width, height, "".join(parts))


def line_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[Any],
    kind: str,
    fmt: Formats,
    x_title: str = "",
    y_title: str = "",
    highlight_last: bool = False,
    empty: str = "Nothing to chart yet.",
) -> str:
    """A line over labelled points, with both axes, tick labels, horizontal gridlines and axis titles."""
    numbers = [_number(v) for v in values]
    known = [n for n in numbers if n is not None]
    if not known:
        return paragraph(empty, "empty")
    width, height, left, right, top, bottom = 930, 320, 78, 30, 34, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(min(known), max(known), whole=kind == INTEGER)
    low, span = ticks[0], ticks[-1] - ticks[0]
    count = len(numbers)

    def x(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * (value - low) / span

    parts = []
    for tick in ticks:
        parts.append(
            f"<line x1='{left}' y1='{y(tick):.1f}' x2='{width - right}' y2='{y(tick):.1f}' stroke='{_GRID}'/>"
            f"<text x='{left - 8}' y='{y(tick) + 4:.1f}' class='tick' text-anchor='end'>"
            f"{esc(fmt.tick(kind, tick))}</text>"
        )
    parts.append(
        f"<line x1='{left}' y1='{top + plot_h}' x2='{width - right}' y2='{top + plot_h}' stroke='{_AXIS}'/>"
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + plot_h}' stroke='{_AXIS}'/>"
    )
    shown = _label_positions(count, max_labels=7)
    for i in shown:
        anchor = "start" if count > 1 and i == 0 else "end" if count > 1 and i == count - 1 else "middle"
        parts.append(
            f"<line x1='{x(i):.1f}' y1='{top + plot_h}' x2='{x(i):.1f}' y2='{top + plot_h + 5}' stroke='{_AXIS}'/>"
            f"<text x='{x(i):.1f}' y='{top + plot_h + 19}' class='tick' text-anchor='{anchor}'>"
            f"{esc(_short(str(labels[i]), 18))}</text>"
        )
    points = [(x(i), y(n)) for i, n in enumerate(numbers) if n is not None]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts.append(f"<polyline fill='none' stroke='{_INK}' stroke-width='2' points='{path}'/>")
    if len(points) <= 60:
        for i, n in enumerate(numbers):
            if n is None:
                continue
            last = highlight_last and i == count - 1
            parts.append(
                f"<circle cx='{x(i):.1f}' cy='{y(n):.1f}' r='{5 if last else 3}' "
                f"fill='{'#d9822b' if last else _INK}'><title>{esc(labels[i])}: {esc(fmt.value(kind, n))}</title>"
                "</circle>"
            )
    if x_title:
        parts.append(_axis_title(left + plot_w / 2, height - 8, x_title))
    if y_title:
        parts.append(
            f"<text transform='translate(14 {top + plot_h / 2:.1f}) rotate(-90)' class='axis' "
            f"text-anchor='middle'>{esc(y_title)}</text>"
        )
    return _svg(title, width, height, "".join(parts))


def _label_positions(count: int, max_labels: int) -> list[int]:
    """Evenly spread indexes for x labels, always the first and the last."""
    if count <= max_labels:
        return list(range(count))
    stride = (count - 1) / (max_labels - 1)
    return sorted({round(i * stride) for i in range(max_labels)})


_STYLE = (
    "*{box-sizing:border-box}"
    "body{font-family:-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;max-width:980px;"
    "margin:0 auto;padding:24px;color:#1d2330;background:#fff;line-height:1.45}"
    "header{border-bottom:2px solid #e3e7ee;margin-bottom:16px}"
    "header .kicker{color:#5b6472;font-size:13px;text-transform:uppercase;letter-spacing:.06em;margin:0}"
    "h1{font-size:26px;margin:4px 0 12px}h2{font-size:19px;margin:0 0 8px}h3{font-size:15px;margin:16px 0 4px}"
    "section{margin:28px 0;padding-top:4px}"
    ".intro{color:#5b6472;margin:0 0 12px;font-size:14px}"
    ".banner{padding:10px 14px;border-radius:6px;margin:0 0 16px}"
    ".banner strong{margin-right:8px}"
    ".banner.succeeded{background:#e8f5e9;border-left:6px solid #2e7d32}"
    ".banner.failed{background:#fdecea;border-left:6px solid #c62828}"
    ".tiles{display:grid;gap:12px;margin:8px 0 4px}.c1{grid-template-columns:1fr}"
    ".c2{grid-template-columns:repeat(2,1fr)}.c3{grid-template-columns:repeat(3,1fr)}"
    ".c4{grid-template-columns:repeat(4,1fr)}"
    "@media (max-width:640px){.tiles{grid-template-columns:repeat(2,1fr)}}"
    ".tile{border:1px solid #e3e7ee;border-radius:8px;padding:12px 14px;background:#f8f9fb}"
    ".tile .label{font-size:13px;color:#5b6472}.tile .value{font-size:26px;font-weight:600;margin:2px 0}"
    ".tile .note{font-size:12px;color:#5b6472}"
    ".tile.bad{border-color:#e6a5a0;background:#fdf1f0}.tile.bad .value{color:#b3261e}"
    ".tile.good .value{color:#1b5e20}"
    "table{border-collapse:collapse;width:100%;font-size:14px;margin:8px 0}"
    "th{background:#f1f3f7;font-weight:600}td,th{border-bottom:1px solid #e3e7ee;padding:6px 10px;vertical-align:top}"
    ".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.txt{text-align:left}"
    "tbody tr:nth-child(even){background:#fafbfc}tbody tr.bad{background:#fdf1f0}.name{white-space:nowrap}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;background:#f1f3f7;padding:0 3px;"
    "border-radius:3px;white-space:nowrap}"
    ".chart{margin:8px 0}.chart svg{max-width:100%;height:auto;font-family:inherit}"
    ".ctitle{font-size:14px;font-weight:600;fill:#1d2330}.tick{font-size:12px;fill:#5b6472}"
    ".label{font-size:12px;fill:#1d2330}.value{font-size:12px;fill:#1d2330}.axis{font-size:12px;fill:#5b6472}"
    ".facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0;font-size:14px}"
    ".facts dt{color:#5b6472}.facts dd{margin:0;word-break:break-word}"
    ".next{background:#fff8e1;border-left:6px solid #f9a825;padding:10px 14px 10px 34px;border-radius:6px}"
    ".warn{background:#fff8e1;border-left:6px solid #f9a825;padding:8px 14px 8px 30px;border-radius:6px}"
    ".empty{color:#5b6472;font-style:italic}"
    "footer{color:#5b6472;font-size:12px;border-top:1px solid #e3e7ee;margin-top:32px;padding-top:8px}"
    "@media print{body{padding:0}section{break-inside:avoid}}"
)


def page(title: str, kicker: str, body: Sequence[str], footer: str) -> str:
    """One self-contained HTML document: inline CSS and SVG, no scripts, nothing fetched."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><p class='kicker'>{esc(kicker)}</p><h1>{esc(title)}</h1></header>"
        f"<main>{''.join(body)}</main><footer>{esc(footer)}</footer></body></html>\n"
    )


def write_report(folder: Path, summary: Mapping[str, Any], document: str) -> Path:
    """Write summary.json and report.html into the folder; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str), encoding="utf-8")
    path = folder / "report.html"
    path.write_text(document, encoding="utf-8")
    return path

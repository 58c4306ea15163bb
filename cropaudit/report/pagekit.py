"""The page kit both HTML pages are built from (the statistics page of ``cropaudit stats`` and
the run report of ``cropaudit report``): one stylesheet, one table helper, one section registry
and one page skeleton, so the two pages look and read alike.

Pages are self-contained: inline CSS, images as ``data:`` URIs, no script and no external
resource of any kind, so a page works offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from cropaudit.rundir.ownership import html_mark

CSS = """
body{font-family:sans-serif;margin:2em auto;padding:0 1.5em;max-width:1200px;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-top:.6em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.plot{max-width:100%;display:block;margin:.5em 0}
.note{color:#555;font-size:13px}.warn{background:#fff4e0;border:1px solid #e0b060;padding:.5em}
nav a{margin-right:1em}
.gallery{display:flex;flex-wrap:wrap;gap:14px}
.gallery figure{margin:0;border:1px solid #ddd;padding:6px;background:#fafafa}
.gallery img{display:block;margin:0 auto;max-width:100%;height:auto}
.gallery figcaption{font-size:11px;line-height:1.35;margin-top:4px}
.gallery figcaption .note{font-size:11px}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #333;vertical-align:middle}
pre{background:#f6f6f6;padding:.6em;font-size:12px;overflow:auto;white-space:pre-wrap;
word-break:break-all}
td{overflow-wrap:break-word}
#findings ul{font-size:14px;line-height:1.4;padding-left:1.2em}#findings li{margin:.2em 0}
.verdict-disparity{color:#a00000;font-weight:bold}.verdict-parity{color:#006000;font-weight:bold}
.verdict-inconclusive{color:#805000;font-weight:bold}
details>summary{cursor:pointer;color:#333}
@media print{body{margin:0;padding:0}nav{display:none}h2{break-after:avoid}
img.plot{max-height:4.8in;width:auto}.gallery{gap:6px}
.gallery figure{width:auto!important;max-width:1.75in;break-inside:avoid;padding:3px}
table{font-size:10px}td,th{padding:1px 4px}}
"""

Context = TypeVar("Context")


@dataclass(frozen=True)
class Section(Generic[Context]):
    """One section of a page: its anchor id (unique on the page), its heading, and the function
    that renders its body from the page's context. A page is a tuple of these, the one list of
    its anchors: the navigation and the body are both made from it."""

    id: str
    title: str
    render: Callable[[Context], str]


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Cell text: numbers short, missing as an en dash."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}g}"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return fmt(value.item(), digits)
        except (ValueError, AttributeError):
            pass
    return str(value)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """An HTML table; numbers right-aligned and short (:func:`fmt`), missing values as a dash."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f"<td{' class=num' if _numeric(v) else ''}>{esc(fmt(v))}</td>" for v in row]
        body.append(f"<tr>{''.join(cells)}</tr>")
    attr = f" class='{cls}'" if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def human(column: str) -> str:
    """A column name as a page heads it: words, not snake_case."""
    return column.replace("_", " ")


def frame_table(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """:func:`table` of ``df``'s ``columns``, headed by the column names in words."""
    columns = list(columns)
    return table([human(c) for c in columns], df[columns].itertuples(index=False, name=None))


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str, cls: str = "plot", **attrs: Any) -> str:
    """An embedded PNG; keyword ``data_criterion="x"`` becomes ``data-criterion='x'``."""
    extra = "".join(f" {k.replace('_', '-')}='{esc(v)}'" for k, v in attrs.items())
    return f"<img class='{cls}' alt='{esc(alt)}' src='{data_uri(png)}'{extra}/>"


def note(text: str, cls: str = "note") -> str:
    return f"<p class='{cls}'>{esc(text)}</p>"


def render_sections(sections: Sequence[Section[Context]], context: Context) -> dict[str, str]:
    """Section id -> rendered body, in page order."""
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"section ids repeat: {ids}")
    return {s.id: s.render(context) for s in sections}


def html_page(
    *,
    kind: str,
    title: str,
    heading: str,
    sections: Sequence[Section[Any]],
    bodies: dict[str, str],
    header: str = "",
    warnings: Sequence[str] = (),
) -> str:
    """The page skeleton: ownership mark (``kind``, see :mod:`cropaudit.rundir.ownership`), the one
    stylesheet, a heading, the ``warnings`` (plain text, first), ``header`` (HTML: what the
    page is about), a navigation bar and one ``<section id=...>`` per entry of ``sections``
    with its body from ``bodies``."""
    nav = "".join(f"<a href='#{s.id}'>{esc(s.title)}</a>" for s in sections)
    warned = "".join(note(w, "warn") for w in warnings)
    body = "".join(
        f"<section id='{s.id}'><h2>{esc(s.title)}</h2>{bodies.get(s.id, '')}</section>"
        for s in sections
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{html_mark(kind)}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head><body>
<h1>{esc(heading)}</h1>
{warned}{header}<nav>{nav}</nav>{body}
</body></html>
"""


#: Environment variable: set to 1 for pages that show full local paths (default: relative).
FULL_PATHS_ENV = "CROPAUDIT_FULL_PATHS"


def relative_paths(text: str, base: str, paths: Iterable[str]) -> str:
    """``text`` with each absolute local path in ``paths`` written relative to the folder
    ``base`` (where the page is, or the folder above a statistics output): a shared page does
    not reveal a home directory. Full paths when :data:`FULL_PATHS_ENV` is ``1``; ``gs://``
    paths stay."""
    import os

    if os.environ.get(FULL_PATHS_ENV) == "1" or "://" in base:
        return text
    base = os.path.abspath(base)
    local = {os.path.abspath(p) for p in paths if p and "://" not in p}
    for path in sorted(local, key=len, reverse=True):
        shown = os.path.relpath(path, base)
        for form in {path, html.escape(path)}:
            text = text.replace(form, shown)
    return text

"""CSV cells that a spreadsheet cannot run as formulas (CSV injection, after the OWASP guidance):
every CSV cropaudit writes passes its cells through :func:`safe_cell`.

A text cell whose first character (after any leading single quotes) is ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets one single quote in front, which spreadsheets show as
text. Numbers stay numbers: a number, or text that reads as one (``-3.5``), is left as it is.
The quote comes off again when cropaudit reads its own CSV back (:func:`restore_cell`, in the
manifest reader), so a label such as ``=x`` survives ``detect-faces`` and ``run`` unchanged;
the rule is reversible because text that already starts with quotes before such a character
gets one more.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_START = frozenset("=+-@\t\r")


def reads_as_number(text: str) -> bool:
    """Whether ``text`` parses as a number (``-3.5``, ``1e-5``, ``-inf``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _quoted_formula(text: str) -> bool:
    return text.lstrip("'")[:1] in FORMULA_START and not reads_as_number(text)


def safe_cell(value: Any) -> Any:
    """``value`` for a CSV cell: formula-looking text quoted, anything else unchanged."""
    if isinstance(value, str) and value and _quoted_formula(value):
        return "'" + value
    return value


def restore_cell(text: str | None) -> str | None:
    """The text :func:`safe_cell` was given (one protective quote removed)."""
    if text and text[0] == "'" and _quoted_formula(text):
        return text[1:]
    return text


def csv_text(rows: Iterable[Sequence[Any]], delimiter: str = ",") -> str:
    """``rows`` (the header first) as CSV text with every cell made safe."""
    buffer = io.StringIO()
    minimal = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    # with a "\n" line end the csv module leaves a "\r" unquoted, which a reader takes for a
    # line break: such a row is written fully quoted
    quoted = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [safe_cell(v) for v in row]
        has_cr = any(isinstance(c, str) and "\r" in c for c in cells)
        (quoted if has_cr else minimal).writerow(cells)
    return buffer.getvalue()

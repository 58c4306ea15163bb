"""CSV cells that a spreadsheet cannot run (OWASP's CSV-injection advice), reversible on read."""

from __future__ import annotations

import csv
import io

import pandas as pd

from cropaudit.csvcells import FORMULA_START, csv_text, restore_cell, safe_cell
from cropaudit.pipelines.plan_pipeline import write_plan

TEXTS = ["=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "\t=x", "\r=x", "'=x", "''@y", "'",
         "plain", "it's", "", "-", "=", "a=b", "'plain"]  # fmt: skip
NUMBERS = ["-1.5", "-3", "+2", "1e-5", "-inf", "0"]


def test_formula_text_is_quoted_numbers_and_plain_text_are_not():
    for text in TEXTS:
        shown = safe_cell(text)
        assert shown[:1] not in FORMULA_START, text
        assert restore_cell(shown) == text  # cropaudit reads back what it was given
    for number in NUMBERS:
        assert safe_cell(number) == number and restore_cell(number) == number
    assert safe_cell(-1.5) == -1.5 and safe_cell(None) is None  # non-text cells untouched
    assert safe_cell("plain") == "plain" and safe_cell("'plain") == "'plain"


def test_every_cell_of_written_csv_is_safe():
    rows = list(
        csv.reader(io.StringIO(csv_text([["a", "b"], *([t, "-2"] for t in TEXTS)]), newline=""))
    )
    assert all(c[:1] not in FORMULA_START or c == "-2" for row in rows for c in row)
    assert [restore_cell(r[0]) for r in rows[1:]] == TEXTS


def test_plan_csv_quotes_label_cells_and_keeps_numbers(tmp_path):
    plan = pd.DataFrame({"stratum": ["=HYPERLINK(1)", "@x"], "ratio": [-0.25, 1.0]})
    with open(write_plan(plan, str(tmp_path / "plan.csv"))) as fh:
        text = fh.read()
    assert text.splitlines() == ["stratum,ratio", "'=HYPERLINK(1),-0.25", "'@x,1"]

"""Spreadsheet-safe CSV cells: every way a cell can start a formula or a DDE command is neutralised."""

from __future__ import annotations

import csv
import io

import pytest

from server.httputil import csv_cell
from server.questions.export import EXPORT_COLUMNS, export_csv

PAYLOADS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "|calc",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    ' =HYPERLINK("http://x")',
    "\u3000=1+1",  # an ideographic space first
    "＝1+1",  # full-width forms, which East Asian spreadsheets also read as formulas
    "＋1",
    "－1",
    "＠SUM(A1)",
    "｜calc",
    "﹦1+1",  # small forms
    "=cmd|' /C calc'!A0",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_starts_are_neutralised(payload: str) -> None:
    """A cell that a spreadsheet would run is prefixed with an apostrophe (shown, never run)."""
    assert csv_cell(payload) == "'" + payload


@pytest.mark.parametrize("value", ["hello", "a=b", "a|b", "1+1", "价格 ＝ 99", "", "１２"])
def test_ordinary_cells_are_unchanged(value: str) -> None:
    """Text that does not start a formula is written as it is."""
    assert csv_cell(value) == value


def test_export_rows_are_neutralised() -> None:
    """The questions export writes each payload neutralised, read back by a CSV reader."""
    items = [{"id": i, "text": payload, "author": "＝evil"} for i, payload in enumerate(PAYLOADS)]
    rows = list(csv.DictReader(io.StringIO(export_csv({"items": items}))))
    assert [r["text"] for r in rows] == ["'" + p for p in PAYLOADS]
    assert {r["author"] for r in rows} == {"'＝evil"}
    assert list(rows[0]) == list(EXPORT_COLUMNS)

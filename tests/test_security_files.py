"""Security of what xrfweb writes and accepts outside the pages (issue 21): CSV exports never
carry a formula, model.json is checked field by field, the size of a request body before
sign-in, redirects after cancel."""
import csv
import io

import numpy as np
import pytest

from enhancer.xrfmap import XRFMap
from tests.reliability.helpers import record

# Each one a spreadsheet runs, or one that breaks the columns, as an element name would bring it.
FORMULAS = ['=HYPERLINK("https://evil.example/","x")', "+1+1", "-2+3", "@SUM(A1)",
            "\tTAB=1", "\rCR=1", "Fe,Zn\nnew line", "Ca"]
SPREADSHEET_RUNS = ("=", "+", "-", "@", "\t", "\r")


def assert_no_formula(cells):
    for cell in cells:
        assert not cell.startswith(SPREADSHEET_RUNS), repr(cell)


def test_the_csv_export_neutralises_formulas_and_keeps_its_columns(tmp_path):
    from enhancer.formats import export_csv

    maps = XRFMap(list(FORMULAS), np.ones((len(FORMULAS), 3, 4)), pixel_size_nm=(50.0, 50.0))
    out = export_csv(maps, tmp_path / "result.csv")
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode(), newline="")))
    header = rows[0]
    assert len(header) == 4 + len(FORMULAS) and len(rows) == 1 + 3 * 4, header
    assert_no_formula(header)
    assert [h.lstrip("'") for h in header[4:]] == FORMULAS  # the name itself survives, quoted
    assert all(len(r) == len(header) for r in rows)
    record("files", "element names =HYPERLINK(...), +, -, @, tab, CR, comma and newline in the "
           "CSV export", "each name one quoted cell, led by ' so no spreadsheet runs it")


def test_the_roi_scan_list_neutralises_formulas():
    from enhancer.roi import CSV_COLUMNS, scan_list_csv

    roi = {c: 1.0 for c in CSV_COLUMNS}
    roi.update(rank=1, cluster="=cmd|' /C calc'!A0", content={el: 2.0 for el in FORMULAS})
    rows = list(csv.reader(io.StringIO(scan_list_csv([roi], FORMULAS), newline="")))
    assert len(rows) == 2 and len(rows[0]) == len(rows[1]) == len(CSV_COLUMNS) + len(FORMULAS)
    assert_no_formula(rows[0] + rows[1])
    record("files", "an ROI scan list with hostile element and cluster names",
           "every cell neutralised, columns intact")

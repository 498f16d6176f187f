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


# --- hole 8: the result is written from the dataset row's file, in the sandboxed child ----------

@pytest.mark.django_db
def test_the_upload_path_comes_from_the_dataset_row(project, alice, tmp_path, monkeypatch):
    """Whatever the reader child says the file was, a job copies the row's own upload."""
    import enhancer.formats as formats
    from tests.reliability import work

    dataset = work.ready_dataset(project, alice)
    read = formats.read_map_safely

    def lying_child(path, **kwargs):  # a child that parsed a hostile file is untrusted
        xrfmap = read(path, **kwargs)
        xrfmap.source["path"] = str(tmp_path / "another-users-upload.h5")
        return xrfmap

    monkeypatch.setattr(formats, "read_map_safely", lying_child)
    assert dataset.read_map().source["path"] == str(dataset.path)


def test_the_hdf5_result_is_written_in_the_sandboxed_child(tmp_path, monkeypatch):
    """The copy of the upload is opened read-write by h5py only in the limited child process."""
    import h5py

    from enhancer.formats import read_map, write_result
    from tests.formats_fixtures import write_maps_v10

    source = tmp_path / "scan.h5"
    write_maps_v10(source, elements=("Fe", "Zn"), rows=8, cols=8, pixel_um=(0.05, 0.05))
    original = read_map(source)
    enhanced = XRFMap(list(original.elements), np.ones((2, 16, 16)), pixel_size_nm=(25.0, 25.0),
                      source_format=original.source_format)

    def refuse(*args, **kwargs):
        raise AssertionError("h5py opened a file in the calling process")

    with monkeypatch.context() as m:
        m.setattr(h5py, "File", refuse)
        out = write_result(original, enhanced, tmp_path / "result.h5", {"model": "m"})
    result = read_map(out)  # the original maps kept, the enhanced ones beside them
    assert result.elements == ["Fe", "Zn"] and result.shape == (2, 8, 8)
    with h5py.File(out) as f:
        assert f.attrs or list(f)  # a real HDF5 file
    record("files", "a MAPS result written from an upload",
           "the copy and the append ran in the sandboxed child (h5py refused in the worker "
           "process); the upload's path came from the dataset row, not from the reader child")

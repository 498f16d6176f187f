"""Exports for people and other programs (any XRFMap, whatever file it came from).

- export_tiff: one float32 TIFF per element, `<element>.tiff`, in a zip when out_path ends with
  .zip, else in a folder. Values unchanged; pixel size in the resolution tags (pixels per cm,
  read by Fiji) and, with units and provenance, in JSON metadata that read_map reads back.
- export_png: a picture with colour bar and scale bar (png.py); all elements side by side
  when element is None.
- export_csv: out_path ending in .csv -> one long table, a line per pixel:
  row, col, y_um, x_um (when known), then one column per element. Anything else (a .zip or a
  folder) -> one grid per element, `<element>.csv`, rows of the map as lines, no header, plus
  metadata.json (elements, units, pixel size, provenance).
An enhanced map's trust maps (trustmaps.py: chi2, uncertainty) go with it in every export:
TIFF `<element>_<kind>.tiff` (read back as trust maps), PNG a panel each under the maps,
CSV columns `<kind>_<element>` (table) or grids `<element>_<kind>.csv`.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from enhancer import UserError
from enhancer.formats import png, rules, tiff, trustmaps
from enhancer.formats.write import atomic_file, write_members
from enhancer.xrfmap import XRFMap


def safe_filename(element: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", element).strip(".") or "map"


def _meta(xrfmap: XRFMap) -> dict:
    return rules.jsonable({"elements": xrfmap.elements, "units": xrfmap.units,
                           "pixel_size_nm": xrfmap.pixel_size_nm, "provenance": xrfmap.provenance})


def export_tiff(xrfmap: XRFMap, out_path) -> Path:
    out = Path(out_path)

    trust = trustmaps.stacks(xrfmap)  # a malformed set fails here, before anything is written

    def members():
        for element, plane in zip(xrfmap.elements, xrfmap.data):
            meta = {"element": element, "units": xrfmap.units, "provenance": xrfmap.provenance}
            yield f"{safe_filename(element)}.tiff", tiff.tiff_bytes(plane, meta, xrfmap.pixel_size_nm)
        for kind, stack in trust.items():
            for element, plane in zip(xrfmap.elements, stack):
                meta = {"element": element, "trust_map": kind, "description": trustmaps.DESCRIPTIONS[kind],
                        "units": xrfmap.units if kind == "uncertainty" else ""}
                yield (f"{safe_filename(element)}_{kind}.tiff",
                       tiff.tiff_bytes(plane, meta, xrfmap.pixel_size_nm))

    write_members(out, members(), as_zip=out.suffix.lower() == ".zip")
    return out


def export_png(xrfmap: XRFMap, out_path, element=None) -> Path:
    if element is not None and element not in xrfmap.elements:
        raise UserError(f"no element {element!r} in these maps; they hold: {', '.join(xrfmap.elements)}")
    chosen = [element] if element is not None else xrfmap.elements
    panels = [png.render(xrfmap.data[xrfmap.elements.index(e)], e, xrfmap.units, xrfmap.pixel_size_nm)
              for e in chosen]
    for kind, stack in trustmaps.stacks(xrfmap).items():
        panels += [png.render(stack[xrfmap.elements.index(e)], f"{e} {kind}",
                              xrfmap.units if kind == "uncertainty" else "", xrfmap.pixel_size_nm)
                   for e in chosen]
    picture = panels[0] if len(panels) == 1 else png.montage(panels)
    out = Path(out_path)
    with atomic_file(out) as tmp:
        picture.save(tmp, format="PNG")
    return out


def _coordinates(xrfmap: XRFMap):
    """(y_um, x_um) grids for each pixel: from the axes, else from the pixel size, else None."""
    _, h, w = xrfmap.shape
    rows, cols = np.mgrid[0:h, 0:w]
    x, y = xrfmap.x_axis_um, xrfmap.y_axis_um
    if x is not None and y is not None:
        xg = x[cols] if x.ndim == 1 else x
        yg = y[rows] if y.ndim == 1 else y
        return yg, xg
    if xrfmap.pixel_size_nm:
        return rows * xrfmap.pixel_size_nm[0] / 1000.0, cols * xrfmap.pixel_size_nm[1] / 1000.0
    return None


def csv_writer(fh):
    """A CSV writer for files people open in spreadsheets (the one rule for every CSV we write):
    the csv module quotes commas, quotes and newlines, and text that a spreadsheet would run as
    a formula gets a leading ' (OWASP: = + - @, and tab or carriage return; defusedcsv covers
    the first, this the last two)."""
    from defusedcsv import csv as defused

    # Lines end in CRLF (RFC 4180): the csv module then quotes a lone CR or LF inside a cell too.
    writer = defused.writer(fh, lineterminator="\r\n")

    def neutral(cell):
        return "'" + cell if isinstance(cell, str) and cell[:1] in ("\t", "\r") else cell

    class Writer:
        def writerow(self, row):
            return writer.writerow([neutral(c) for c in row])

    return Writer()


def export_csv(xrfmap: XRFMap, out_path) -> Path:
    out = Path(out_path)
    trust = trustmaps.stacks(xrfmap)
    if out.suffix.lower() == ".csv":
        _, h, w = xrfmap.shape
        rows, cols = np.mgrid[0:h, 0:w]
        columns, header = [rows.ravel(), cols.ravel()], ["row", "col"]
        fmt = ["%d", "%d"]
        coords = _coordinates(xrfmap)
        if coords is not None:
            columns += [coords[0].ravel(), coords[1].ravel()]
            header += ["y_um", "x_um"]
            fmt += ["%.6f", "%.6f"]
        columns += [plane.ravel() for plane in xrfmap.data]
        header += list(xrfmap.elements)
        fmt += ["%.7g"] * len(xrfmap.elements)
        for kind, stack in trust.items():
            columns += [plane.ravel() for plane in stack]
            header += [f"{kind}_{el}" for el in xrfmap.elements]
            fmt += ["%.7g"] * len(xrfmap.elements)
        table = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
        with atomic_file(out) as tmp, open(tmp, "w", newline="") as fh:
            csv_writer(fh).writerow(header)  # element names come from the upload
            np.savetxt(fh, table, fmt=fmt, delimiter=",", newline="\r\n")  # numbers only
        return out

    def members():
        for element, plane in zip(xrfmap.elements, xrfmap.data):
            buf = io.StringIO()
            np.savetxt(buf, plane, fmt="%.7g", delimiter=",")
            yield f"{safe_filename(element)}.csv", buf.getvalue().encode()
        for kind, stack in trust.items():
            for element, plane in zip(xrfmap.elements, stack):
                buf = io.StringIO()
                np.savetxt(buf, plane, fmt="%.7g", delimiter=",")
                yield f"{safe_filename(element)}_{kind}.csv", buf.getvalue().encode()
        yield "metadata.json", json.dumps(_meta(xrfmap), indent=2).encode()

    write_members(out, members(), as_zip=out.suffix.lower() == ".zip")
    return out

"""Fine-scan suggestions (enhancer.roi): segmentation, clustering, ranking, scan lists, CLI.

Recall is measured on a phantom of known cells: a true cell is found when its centre falls in
a suggested box (and, stricter, when its own bounding box overlaps a suggested box with
IoU >= 0.5).
"""
import csv
import json

import numpy as np
import pytest

from enhancer import UserError
from enhancer.cli import main
from enhancer.degrade import Degradation
from enhancer.roi import CSV_COLUMNS, cluster, find_rois, segment
from enhancer.xrfmap import fine_axis_um
from enhancer.xrfmap import XRFMap

FINE_NM = 50.0


def cell_field(size=160, n=12, rare=3, seed=0):
    """Known, separated cells on a faint background: Fe-rich cells and `rare` Zn-rich ones.

    Returns maps (2, size, size) for Fe, Zn and the cells as (cy, cx, ry, rx, kind) in fine
    pixels, kind 1 = Zn-rich (rare).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    maps = np.zeros((2, size, size))
    cells = []
    while len(cells) < n:
        ry, rx = rng.uniform(5, 11, 2)
        cy, cx = rng.uniform(max(ry, rx) + 3, size - max(ry, rx) - 3, 2)
        if any(np.hypot(cy - c[0], cx - c[1]) < max(ry, rx) + max(c[2], c[3]) + 6 for c in cells):
            continue
        kind = int(len(cells) < rare)
        cells.append((cy, cx, ry, rx, kind))
        body = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        nucleus = ((y - cy) / (ry / 2.5)) ** 2 + ((x - cx) / (rx / 2.5)) ** 2 < 1
        fe, zn = (0.3, 1.0) if kind else (1.0, 0.2)
        for i, level in enumerate((fe, zn)):
            maps[i] += body * level * rng.uniform(0.7, 1.0) + nucleus * 0.3 * level
    return (maps + 0.03).astype(np.float32), cells


def measured_field(scale, seed):
    """The cell field scanned with a 200 nm probe at a step of scale x 50 nm, 1000 counts."""
    truth, cells = cell_field(seed=seed)
    noisy = Degradation(200, FINE_NM, scale, counts=1000).apply(truth, seed=seed + 1)
    return XRFMap(["Fe", "Zn"], noisy, pixel_size_nm=(FINE_NM * scale,) * 2), cells


def centre_um(cell, scale):
    """A cell's centre in um with the origin at the centre of the scan's first pixel."""
    cy, cx = cell[:2]
    offset = (scale - 1) / 2  # the first coarse pixel's centre, in fine pixels
    return (cx - offset) * FINE_NM / 1000, (cy - offset) * FINE_NM / 1000


def contains(roi, x_um, y_um):
    return abs(roi["x_um"] - x_um) <= roi["width_um"] / 2 and abs(roi["y_um"] - y_um) <= roi["height_um"] / 2


def iou(a, b):
    """Boxes as (x0, y0, x1, y1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("scale", [1, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_of_known_cells_is_at_least_90_percent(scale, seed):
    m, cells = measured_field(scale, seed)
    rois = find_rois(m, min_area_px=max(4, 20 // scale**2))
    found = [any(contains(r, *centre_um(c, scale)) for r in rois) for c in cells]
    assert np.mean(found) >= 0.9
    assert len(rois) <= len(cells) + 1  # no flood of boxes on noise and background


def test_boxes_are_tight_around_the_cells():
    m, cells = measured_field(1, seed=0)
    rois = find_rois(m, margin=0.0)
    boxes = [(r["x_um"] - r["width_um"] / 2, r["y_um"] - r["height_um"] / 2,
              r["x_um"] + r["width_um"] / 2, r["y_um"] + r["height_um"] / 2) for r in rois]
    good = 0
    for cell in cells:
        x, y = centre_um(cell, 1)
        ry, rx = cell[2] * FINE_NM / 1000, cell[3] * FINE_NM / 1000
        truth = (x - rx, y - ry, x + rx, y + ry)
        good += max(iou(truth, b) for b in boxes) >= 0.5
    assert good / len(cells) >= 0.9


@pytest.mark.parametrize("scale", [1, 4])
def test_the_rare_kind_of_cell_is_its_own_cluster_and_ranks_first(scale):
    m, cells = measured_field(scale, seed=3)
    rois = find_rois(m, min_area_px=max(4, 20 // scale**2))
    kind_of = {}
    for r in rois:
        kinds = {c[4] for c in cells if contains(r, *centre_um(c, scale))}
        assert len(kinds) == 1
        kind_of[r["rank"]] = kinds.pop()
    clusters = {}
    for r in rois:
        clusters.setdefault(r["cluster"], set()).add(kind_of[r["rank"]])
    assert sorted(clusters) == [0, 1] and all(len(k) == 1 for k in clusters.values())
    assert clusters[0] == {0}  # cluster 0 is the largest: the common Fe-rich cells
    assert [kind_of[rank] for rank in (1, 2, 3)] == [1, 1, 1]
    assert [r["score"] for r in rois] == sorted((r["score"] for r in rois), reverse=True)


def test_clusters_can_be_given_and_one_kind_stays_one_cluster():
    rng = np.random.default_rng(0)
    same = rng.normal(1.0, 0.05, (20, 2))
    assert set(cluster(same)) == {0}
    two = np.vstack([same, rng.normal(3.0, 0.05, (5, 2))])
    labels = cluster(two)
    assert list(labels[:20]) == [0] * 20 and list(labels[20:]) == [1] * 5
    assert len(set(cluster(same, clusters=3))) == 3


def test_segmentation_ignores_isolated_noise_and_empty_maps():
    rng = np.random.default_rng(1)
    image = rng.poisson(2.0, (64, 64)).astype(float)  # noise only: no cell
    image[20:40, 20:40] += 50
    labels = segment(image)
    assert labels.max() == 1 and (labels > 0).sum() == pytest.approx(400, rel=0.1)
    assert segment(np.zeros((32, 32))).max() == 0
    assert find_rois(XRFMap(["Fe"], np.ones((32, 32)), pixel_size_nm=(100.0, 100.0))) == []


def test_cells_joined_by_a_thin_bridge_are_two_regions():
    image = np.zeros((48, 64))
    image[10:30, 5:25] = 1.0
    image[10:30, 40:60] = 1.0
    image[19:21, 25:40] = 1.0  # a 2-pixel filament between them, as ROI-Finder's opening removes
    assert segment(image).max() == 2


def test_motor_axes_set_the_coordinates():
    truth, cells = cell_field(size=96, n=3, rare=0, seed=4)
    x_axis = 250.0 + np.arange(96) * 0.05  # um, ascending
    y_axis = 80.0 - np.arange(96) * 0.05  # um, descending, as some stages count
    m = XRFMap(["Fe", "Zn"], truth, x_axis_um=x_axis, y_axis_um=y_axis)
    rois = find_rois(m)  # no pixel size needed: the axes say where each pixel is
    assert len(rois) == 3
    for cy, cx, *_ in cells:
        assert any(contains(r, 250.0 + cx * 0.05, 80.0 - cy * 0.05) for r in rois)
    assert all(r["step_nm"] == pytest.approx(50.0) for r in rois)
    assert find_rois(m, step_nm=20)[0]["step_nm"] == 20


def test_fine_axis_puts_each_fine_pixel_at_its_centre():
    coarse = np.array([10.0, 10.2, 10.4])  # 200 nm steps
    fine = fine_axis_um(coarse, 4)
    assert len(fine) == 12
    np.testing.assert_allclose(fine[1:3].mean(), 10.0)  # the first block straddles pixel 0's centre
    np.testing.assert_allclose(np.diff(fine), 0.05)


def test_bad_requests_are_user_errors():
    m, _ = measured_field(1, seed=0)
    with pytest.raises(UserError, match="Cu"):
        find_rois(m, elements=["Cu"])
    with pytest.raises(UserError, match="pixel size"):
        find_rois(XRFMap(["Fe"], m.data[:1]))
    bad = m.data.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(UserError, match="NaN"):
        find_rois(XRFMap(["Fe", "Zn"], bad, pixel_size_nm=(50.0, 50.0)))


def test_cli_writes_the_scan_list_as_csv_and_json(tmp_path, capsys):
    m, cells = measured_field(1, seed=0)
    src = tmp_path / "coarse.npy"
    np.save(src, m.data)
    out = tmp_path / "scan.csv"
    assert main(["roi", str(src), str(out), "--pixel-nm", "50", "--step-nm", "25", "--top", "5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rois"] == 5
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    assert list(rows[0])[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert {"map_1_mean", "map_2_mean"} <= set(rows[0])
    assert all(float(r["step_nm"]) == 25 for r in rows)
    doc = json.loads(out.with_suffix(".json").read_text())
    assert "centre" in doc["convention"] and len(doc["rois"]) == 5
    assert doc["rois"][0]["x_um"] == pytest.approx(float(rows[0]["x_um"]), rel=1e-5)
    # every suggested box holds a true cell
    assert all(any(contains(r, *centre_um(c, 1)) for c in cells) for r in doc["rois"])


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    m, _ = measured_field(1, seed=0)
    src = tmp_path / "coarse.npy"
    np.save(src, m.data)
    assert main(["roi", str(src), str(tmp_path / "s.csv")]) == 2  # .npy has no pixel size
    assert main(["roi", str(src), str(tmp_path / "s.csv"), "--pixel-nm", "50", "--elements", "Cu"]) == 2
    assert main(["roi", str(src), str(tmp_path / "s.csv"), "--pixel-nm", "-5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "pixel" in err[0] and "Cu" in err[1]
    assert not (tmp_path / "s.csv").exists()

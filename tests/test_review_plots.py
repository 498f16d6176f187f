"""Payload building for the review pages (xrfweb.review.plots): typed arrays Plotly reads,
overviews that keep values, windows at full resolution."""
import base64
import json

import numpy as np
import pytest

from xrfweb.review.plots import (
    Grid, block_mean, decode, heatmap, jsonable, typed_array, window_from_px,
)


def test_a_map_travels_as_plotlys_typed_array():
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    spec = typed_array(a)
    assert spec["dtype"] == "f4" and spec["shape"] == "3, 4"
    raw = np.frombuffer(base64.b64decode(spec["bdata"]), "<f4")  # what plotly.js reads
    assert raw.tolist() == a.ravel().tolist()
    assert np.array_equal(decode(spec), a)
    assert decode(typed_array(np.array([1000.123456789]), "f8"))[0] == 1000.123456789


def test_block_means_keep_the_level_at_partial_edges():
    a = np.arange(25, dtype=np.float32).reshape(5, 5)
    m = block_mean(a, 2)
    assert m.shape == (3, 3)
    assert m[0, 0] == pytest.approx(np.mean([0, 1, 5, 6]))
    assert m[2, 2] == 24  # the corner block holds one pixel: its value, not a quarter of it
    assert m[0, 2] == pytest.approx(np.mean([4, 9]))


def test_an_overview_fits_the_limit_and_a_zoomed_window_is_full_resolution():
    rng = np.random.default_rng(0)
    a = rng.random((1000, 700), dtype=np.float32)
    x_um = -5 + np.arange(700) * 0.025
    y_um = 10 + np.arange(1000) * 0.025
    grid = Grid(1000, 700, x_um, y_um)
    over = heatmap(a, grid, max_px=256)
    z = decode(over["z"])
    assert max(z.shape) <= 256 and over["factor"] == 4
    assert z.mean() == pytest.approx(a.mean(), rel=1e-4)
    assert len(decode(over["x_um"])) == z.shape[1] and len(decode(over["y_px"])) == z.shape[0]
    assert decode(over["x_um"])[0] == pytest.approx(x_um[:4].mean())

    window = window_from_px(grid, x0=100.2, x1=199.7, y0=300, y1=350)
    zoom = heatmap(a, grid, max_px=512, window=window)
    r0, r1, c0, c1 = zoom["window"]
    assert zoom["factor"] == 1 and r0 <= 300 and r1 > 350 and c0 <= 100 and c1 > 199
    assert np.array_equal(decode(zoom["z"]), a[r0:r1, c0:c1])
    assert decode(zoom["x_px"])[0] == c0


def test_a_window_outside_the_map_is_refused_and_a_coarse_grid_maps_fine_pixels():
    grid = Grid(10, 10, px_step=4, px_offset=1.5)  # an input shown on its 4x finer grid
    assert window_from_px(grid, 0, 39, 0, 39) == (0, 10, 0, 10)
    assert window_from_px(grid, 17.5, 17.5, 1.5, 1.5)[2:] == (3, 6)  # around input column 4
    with pytest.raises(ValueError, match="no pixels"):
        heatmap(np.zeros((10, 10)), grid, window=(20, 30, 0, 5))
    assert "x_um" not in heatmap(np.zeros((10, 10)), grid)  # no pixel size: pixels only


def test_json_for_the_browser_has_no_nan():
    out = json.dumps(jsonable({"a": float("nan"), "b": [np.float32(2.5), np.inf], "c": np.int64(3)}),
                     allow_nan=False)
    assert json.loads(out) == {"a": None, "b": [2.5, None], "c": 3}

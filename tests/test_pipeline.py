"""One enhancement pipeline (enhancer.pipeline): every result carries its chi^2 map and report,
whichever way it was made; the web's review only reads results; nothing imports in a circle."""
import ast
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from enhancer.bundle import load_bundle
from enhancer.cli import main
from enhancer.formats import read_enhanced, read_map
from enhancer.trust import consistency
from tests.formats_fixtures import write_maps_v10

REPO = Path(__file__).resolve().parents[1]


def test_cli_enhance_with_a_shipped_model_writes_the_chi2_map(tmp_path, capsys):
    scan = tmp_path / "2xfm_0042.h5"
    write_maps_v10(scan, elements=("Fe", "Zn"), rows=40, cols=48, pixel_um=(0.05, 0.05))
    out = tmp_path / "enhanced.h5"
    assert main(["enhance", str(scan), str(out), "--model", "protocol-a"]) == 0, capsys.readouterr().err
    with h5py.File(out) as f:
        group = f["/MAPS/XRF_Analyzed/Fitted_Enhanced"]
        chi2 = group["Chi2"][()]
        provenance = json.loads(group.attrs["provenance"])
    assert chi2.shape == (2, 40, 48) and np.isfinite(chi2).all() and chi2.min() >= 0
    # the stored map and summary are the consistency of the stored enhanced maps with the scan
    enhanced = read_enhanced(out, read_map(scan))
    np.testing.assert_array_equal(enhanced.extras["chi2:Zn"], chi2[1])
    expected, summary = consistency(read_map(scan).data, enhanced.data,
                                    load_bundle("protocol-a").degradation, elements=["Fe", "Zn"],
                                    fine_pixel_nm=50.0)
    np.testing.assert_allclose(chi2, expected, rtol=1e-4, atol=1e-6)  # scale 1: the same grid
    stored = provenance["trust"]["consistency"]
    assert stored["verdict"] == summary["verdict"] and stored["gain_source"] == summary["gain_source"]
    for el in ("Fe", "Zn"):
        assert stored["elements"][el]["mean_chi2"] == pytest.approx(summary["elements"][el]["mean_chi2"], rel=1e-4)


def test_a_plain_map_result_carries_its_chi2_sidecar(tmp_path):
    scan = tmp_path / "scan.npy"
    rng = np.random.default_rng(0)
    np.save(scan, rng.poisson(50, (2, 32, 32)).astype(np.float32))
    out = tmp_path / "out.npy"
    assert main(["enhance", str(scan), str(out), "--model", "protocol-a", "--pixel-nm", "50"]) == 0
    chi2 = np.load(tmp_path / "out.chi2.npy")
    assert chi2.shape == (2, 32, 32) and np.isfinite(chi2).all()
    assert read_map(out).extras["chi2:map_1"].shape == (32, 32)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_review_imports_no_science_module():
    science = {"enhancer.trust", "enhancer.metrics", "enhancer.baselines"}
    for path in (REPO / "xrfweb" / "review").glob("*.py"):
        assert not _imports(path) & science, path.name


def test_nothing_in_enhancer_imports_in_a_circle():
    """Every import, lazy ones included: a module graph with no cycle."""
    root = REPO / "enhancer"
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for a in node.names:
                    full = f"{target}.{a.name}"
                    deps.add(full if full in modules else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in modules and d not in (name, "enhancer")}
    sys.setrecursionlimit(10_000)
    done, path = set(), []

    def visit(node):
        if node in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        path.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)

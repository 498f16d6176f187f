"""The fast paths (compiled, eager bf16) give the plain network's answer, and the speed
benchmark's measurements measure what they say."""
import logging

import numpy as np
import pytest
import torch

from enhancer import enhance as enhance_module
from enhancer.enhance import enhance
from enhancer.phantoms import phantom
from enhancer.speed import inference, peak_rss_mb
from tests.test_enhance import random_bundle


def test_compiled_enhancement_matches_the_plain_network(monkeypatch):
    real_compile, calls = torch.compile, []

    def counting(*args, **kwargs):
        compiled = real_compile(*args, **kwargs)
        return lambda x: calls.append(x.shape) or compiled(x)

    monkeypatch.setattr(torch, "compile", counting)
    b = random_bundle(scale=1)
    maps = phantom("cell", 96, 2, seed=2) + 0.05
    plain = enhance(maps, b, fast=False)
    compiled = enhance(maps, b, compile=True, tile=48, batch=2)
    # 9 tiles per element: 4 full batches each compiled, the odd tile eager (no recompiling)
    assert len(calls) == 8 and len(set(calls)) == 1
    # bf16 rounds the learned residual only; the map itself passes in fp32 (global skip)
    np.testing.assert_allclose(compiled, plain, rtol=0.02, atol=0.02 * plain.max())
    assert not np.array_equal(compiled, plain)  # the fast path really ran


def test_a_failed_compilation_falls_back_to_eager(monkeypatch, caplog):
    def broken(*args, **kwargs):
        def fail(x):
            raise RuntimeError("no C++ compiler here")
        return fail

    monkeypatch.setattr(torch, "compile", broken)
    b = random_bundle(scale=1)
    maps = phantom("cell", 64, 1, seed=3) + 0.05
    with caplog.at_level(logging.WARNING, logger=enhance_module.__name__):
        out = enhance(maps, b, compile=True, tile=32, batch=1)
    np.testing.assert_allclose(out, enhance(maps, b), rtol=1e-6)
    assert "torch.compile failed" in caplog.text


def test_a_time_limit_during_compilation_is_not_swallowed(monkeypatch):
    class SoftTimeLimitExceeded(Exception):  # Celery's, by name: enhancer never imports Celery
        pass

    def slow(*args, **kwargs):
        def fail(x):
            try:
                raise SoftTimeLimitExceeded()
            except SoftTimeLimitExceeded as e:  # torch's compiler wraps what it catches
                raise RuntimeError("backend compiler failed") from e
        return fail

    monkeypatch.setattr(torch, "compile", slow)
    b = random_bundle(scale=1)
    with pytest.raises(RuntimeError, match="backend compiler failed"):
        enhance(phantom("cell", 64, 1, seed=3) + 0.05, b, compile=True, tile=32, batch=1)


def test_only_large_jobs_are_compiled(monkeypatch):
    calls = []
    monkeypatch.setattr(enhance_module._Runner, "compile", lambda self: calls.append(1))
    b = random_bundle(scale=1)  # 2 x 8: about 5 kFLOP per pixel
    enhance(np.ones((1, 64, 64), np.float32), b)
    assert calls == []
    monkeypatch.setattr(enhance_module, "COMPILE_MIN_GFLOP", 1e-3)
    enhance(np.ones((1, 64, 64), np.float32), b)
    assert calls == [1]


def test_inference_rates_are_measured_for_every_path():
    rates = inference(random_bundle(scale=4), tile=64, batch=2)
    assert {"naive_fp32_gflops", "eager_fast_gflops", "compiled_gflops"} <= set(rates)
    assert all(rates[k] > 0 for k in ("naive_fp32_gflops", "eager_fast_gflops", "compiled_gflops"))


def _resident_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    line = next(x for x in open("/proc/self/status") if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_peak_memory_is_the_child_own_not_its_parent(tmp_path):
    from enhancer.bundle import save_bundle

    b = random_bundle(scale=1)
    path = save_bundle(tmp_path / "m", b.network, b.config)
    ballast = np.ones(900 * 2**20 // 8)  # 900 MB resident in this (the parent) process
    assert _resident_mb() > 900  # the premise: the parent is that large
    r = peak_rss_mb(path, 1, 64)
    # Linux's ru_maxrss would report the parent's 900 MB+ for a forked child; VmHWM does not.
    assert 50 < r["peak_rss_mb"] < 700, r
    del ballast  # held until the child has run


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_tiles_reuse_freed_memory_instead_of_faulting_it_in_afresh():
    """glibc returns freed blocks over 32 MB to the OS; without holding them each tile's
    convolution outputs (34 MB each here) were page-faulted in again, tile after tile."""
    b = random_bundle(scale=1, blocks=1, filters=8)
    one, four = np.ones((1, 1024, 1024), np.float32), np.ones((1, 1024, 3000), np.float32)
    enhance(one, b, tile=1024)  # torch's own first-use allocations
    f0 = _minor_faults()
    enhance(one, b, tile=1024)
    f1 = _minor_faults()
    enhance(four, b, tile=1024)  # 3 tiles
    f2 = _minor_faults()
    per_tile_activations = 6 * 8 * 1024 * 1024 * 4 // 4096  # pages: six 34 MB outputs
    extra_map = 2 * 1024 * (3000 - 1024) * 4 // 4096  # the larger input and output themselves
    assert (f2 - f1) - (f1 - f0) < extra_map + per_tile_activations, (f1 - f0, f2 - f1)

"""The data step's cost on a random SIDE^2 map (it runs to its cap there): time, iterations and VmHWM.
    PYTHONPATH=. .venv/bin/python scripts/data_step_cost.py SIDE 0|1   (1: with the step)
"""
import sys, time, numpy as np, torch
from enhancer.bundle import load_bundle
from enhancer.enhance import enhance
n, ref = int(sys.argv[1]), sys.argv[2] == "1"
b = load_bundle("universal")
maps = np.random.default_rng(0).random((1, n, n), dtype=np.float32)
log = []
t = time.time()
enhance(maps, b, conditions=((3.0, 3.0), 1, 500.0), refine=ref, refined=log)
print(n, ref, "%.1f s" % (time.time() - t), log, "VmHWM MB", int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024, flush=True)

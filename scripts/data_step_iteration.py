"""The data step's time per iteration per million fine pixels, one thread, as run (docs/benchmarks.md).
    PYTHONPATH=. .venv/bin/python scripts/data_step_iteration.py
"""
import time, numpy as np, torch, resource
from enhancer.refine import refine
from enhancer.degrade import gaussian_probe
torch.set_num_threads(1)
for n, s, p in ((1024, 1, 8.0), (512, 2, 2.0)):
    g = np.random.default_rng(0).poisson(100, (n, n)).astype(np.float32)
    fine = np.ones((n*s, n*s), np.float32) * 50
    t = time.time(); r = refine(fine, g, gaussian_probe(p, 1.0), s, 1e4, target=0.0, max_iterations=10)
    print(n, s, p, r["iterations"], "%.2f s/iteration per Mpx(fine)" % ((time.time()-t)/10/(n*s)**2*1e6), "maxrss MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)

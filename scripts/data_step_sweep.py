"""The data step's iteration sweep (docs/benchmarks.md, "Session 7: a data step after the network"),
as run: the shipped network's output on bench --universal's held-out maps and draws, Richardson-Lucy
from it for 0-40 iterations, PSNR and pooled mean chi^2 per iteration.
    PYTHONPATH=. .venv/bin/python scripts/data_step_sweep.py
"""
import sys, time, numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from enhancer.bench_universal import held_out
from enhancer.bundle import load_bundle
from enhancer.degrade import Degradation
from enhancer.enhance import enhance
from enhancer.metrics import psnr
from enhancer.universal import _gauss_blur
b = load_bundle("universal")
maps = held_out()
conds = [((2.,2.),1,5000.),((2.,2.),1,500.),((3.,3.),2,5000.),((8.,8.),4,50.),((5.,5.),4,50.),((4.,4.),1,1000.)]
def A(x, p, s): return F.avg_pool2d(_gauss_blur(x, *p), s) if s>1 else _gauss_blur(x,*p)
def AT(r, p, s):
    if s>1: r = r.repeat_interleave(s,-2).repeat_interleave(s,-1)
    return _gauss_blur(r, *p)
N=40
for p,s,c in conds:
    d = Degradation(p[0],1.0,s,c,probe_fwhm_y_nm=p[1])
    ps=np.zeros(N+1); chis=np.zeros(N+1); base=[]
    for i,(k,truth) in enumerate(maps):
        g = d.apply(truth, seed=i)
        est = enhance(g, b, conditions=(p,s,c), refine=False)  # the network alone
        for e in range(len(truth)):
            x = torch.from_numpy(np.clip(est[e],0,None))[None,None].float()
            gt = torch.from_numpy(g[e])[None,None].float()
            gain = c / max(float(A(x,p,s).max()), 1e-12)
            gain = c/ min(float(A(x,p,s).max()), float(gt.max()))
            for it in range(N+1):
                ex = A(x,p,s)
                var = torch.clamp(ex, min=1/gain)/gain
                chis[it] += float(((gt-ex)**2/var).mean())/ (len(maps)*len(truth))
                ps[it] += psnr(x[0,0].numpy(), truth[e])/(len(maps)*len(truth))
                ratio = gt/ex.clamp(min=1e-12)
                x = x*AT(ratio,p,s)
    best=int(np.argmax(ps))
    disc=int(np.argmax(chis<=1.0)) if (chis<=1).any() else N
    print(p,s,c,"psnr0 %.2f best %.2f@%d chi0 %.2f  disc@%d psnr %.2f"%(ps[0],ps[best],best,chis[0],disc,ps[disc]))
    print("  psnr", " ".join("%.2f"%v for v in ps[[0,1,2,3,5,8,12,20,30,40]]))
    print("  chi ", " ".join("%.2f"%v for v in chis[[0,1,2,3,5,8,12,20,30,40]]), flush=True)

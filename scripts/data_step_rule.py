"""The data step's rule (refine.refine) per element on the same maps, and with probes stated 25%
too small or large (docs/benchmarks.md, Session 7), as run.
    PYTHONPATH=. .venv/bin/python scripts/data_step_rule.py
"""
import sys, time, numpy as np, torch
from enhancer.bench_universal import held_out
from enhancer.bundle import load_bundle
from enhancer.degrade import Degradation, gaussian_probe
from enhancer.enhance import enhance
from enhancer.metrics import psnr, totals_error
from enhancer.refine import refine
b = load_bundle("universal")
maps = held_out()
conds = [((2.,2.),1,5000.),((2.,2.),1,500.),((3.,3.),2,5000.),((8.,8.),4,50.),((5.,5.),4,50.),((4.,4.),1,1000.),((2.,4.),2,500.),((8.,8.),1,5000.)]
mis = [(((3.,3.),2,500.),0.75),(((3.,3.),2,500.),1.25),(((5.,5.),4,500.),0.75),(((5.,5.),4,500.),1.25)]
t=0
for (p,s,c),f in [(x,1.0) for x in conds]+mis:
    d = Degradation(p[0],1.0,s,c,probe_fwhm_y_nm=p[1])
    told=(p[0]*f,p[1]*f); psf=gaussian_probe(told[0],1.0,told[1])
    a=[];bb=[];its=[];tot=0
    for i,(k,truth) in enumerate(maps):
        g = d.apply(truth, seed=i)
        est = enhance(g, b, conditions=(told,s,c), refine=False)  # the network alone
        a.append(psnr(est,truth))
        t0=time.time()
        r = est.copy()
        for e in range(len(r)):
            its.append(refine(r[e], g[e], psf, s, c)["iterations"])
        t+=time.time()-t0
        tot=max(tot,float(np.max(np.abs(totals_error(r,g)))))
        bb.append(psnr(r,truth))
    print(p,s,c,"x%g"%f,"net %.2f refined %.2f (%+.2f) its %s totals %.2f%%"%(np.mean(a),np.mean(bb),np.mean(bb)-np.mean(a),its,100*tot),flush=True)
print("refine s",t)

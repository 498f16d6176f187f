"""Approving a model: first the benchmark for its condition, run by a worker (never in a request);
approval is refused when the model loses to its own input, unless staff state why (recorded).

The cases are the benchmark protocol's (enhancer.bench.CASES) that the one fit rule
(enhancer.fit) accepts for the model, the closest ones only: a model made for case A is not also
judged on case C's dose. Each case runs on the held-out phantoms (enhancer.bench.held_out_set,
quick: one of each kind), so every model checked on a case is measured on the same maps.
"""
import logging

from django.db import transaction
from django.utils import timezone

from enhancer import UserError
from xrfweb.queueing import send_after_commit
from xrfweb.registry.models import EnhancementModel

log = logging.getLogger(__name__)
SET = "held-out phantoms, one 96 px map of each kind (enhancer.bench.held_out_set, quick)"


def cases_for(config: dict) -> list[str]:
    """The protocol cases this model fits best (empty when it fits none)."""
    from enhancer.bench import CASES
    from enhancer.fit import fit
    from enhancer.physics import Physics

    fits = []
    for case, (pixel, fwhm, scale, counts, _) in CASES.items():
        physics = Physics((pixel * scale,) * 2, (fwhm, fwhm), counts)
        try:
            found = fit(config, physics, scale)
        except UserError:
            continue
        if found.ok:
            fits.append((found.mismatch, case))
    best = min((m for m, _ in fits), default=None)
    return [case for m, case in fits if m == best]


def request_benchmark(model: EnhancementModel) -> EnhancementModel:
    """Queue the approval benchmark on a worker (gpu queue)."""
    from xrfweb.registry.tasks import benchmark_model

    if model.benchmark.get("status") in ("queued", "running"):
        return model
    with transaction.atomic():
        model.benchmark = {"status": "queued", "requested": timezone.now().isoformat()}
        model.save(update_fields=["benchmark"])
        send_after_commit(benchmark_model, model.id)
    return model


def run_benchmark(model_id: int) -> None:
    """The worker's side: run the cases, record the gains over the input and over
    Richardson-Lucy (oracle-tuned, the best it can do) on the model row."""
    with transaction.atomic():
        model = EnhancementModel.objects.select_for_update().filter(id=model_id).first()
        if model is None or model.benchmark.get("status") != "queued":
            return  # a second delivery, or deleted
        model.benchmark = {**model.benchmark, "status": "running"}
        model.save(update_fields=["benchmark"])
    try:
        result = _measure(model)
    except Exception as e:  # recorded for staff in words; the traceback goes to the log
        log.exception("approval benchmark of model %s", model_id)
        result = {"status": "failed", "reason": str(e) or type(e).__name__}
    result["finished"] = timezone.now().isoformat()
    EnhancementModel.objects.filter(id=model_id).update(benchmark=result)


def _measure(model: EnhancementModel) -> dict:
    from enhancer.bench import CASES, held_out_set, run_case, summarise
    from enhancer.bundle import load_bundle

    cases = cases_for(model.config)
    if not cases:
        return {"status": "done", "verdict": "unfit", "cases": [],
                "reason": "no case of the benchmark protocol fits this model's step and probe "
                          f"({', '.join(f'{c}: {p * s:g} nm step, {f:g} nm probe' for c, (p, f, s, _, _) in CASES.items())})"}
    bundle = load_bundle(model.bundle_ref)
    summary = {case: summarise(run_case(case, bundle, held_out_set(quick=True), self_ensemble=False))
               for case in cases}

    def gain(other):
        return min(summary[c]["network"]["psnr"] - summary[c][other]["psnr"] for c in cases)

    gain_input, gain_rl = gain("input"), gain("rl_oracle")
    return {"status": "done", "cases": cases, "set": SET, "summary": summary,
            "gain_input_db": gain_input, "gain_rl_db": gain_rl,
            "verdict": "better" if gain_input > 0 else "worse"}


def problem(model: EnhancementModel) -> str:
    """Why this model should not be approved as it stands, or ''."""
    b = model.benchmark
    status = b.get("status")
    if not status:
        return "the approval benchmark has not been run for this model"
    if status in ("queued", "running"):
        return "the approval benchmark is still running"
    if status == "failed":
        return f"the approval benchmark failed: {b.get('reason')}"
    if b.get("verdict") == "unfit":
        return b["reason"]
    if b.get("verdict") == "worse":
        return (f"it loses to its own input by {-b['gain_input_db']:.2f} dB (PSNR) on case "
                f"{', '.join(b['cases'])}")
    return ""


def approve(model: EnhancementModel, user, reason: str = "") -> EnhancementModel:
    """Offer the model to users. Refused when the benchmark did not pass, unless a reason is
    given: then the reason, who and when are recorded with the model."""
    reason = (reason or "").strip()
    why_not = problem(model)
    if why_not and not reason:
        raise UserError(f"not approved: {why_not}. Staff may approve it anyway by stating a "
                        "reason")
    model.status = EnhancementModel.Status.APPROVED
    model.approved_by = user if getattr(user, "is_authenticated", False) else None
    model.approved_at = timezone.now()
    model.approval_reason = reason
    model.save(update_fields=["status", "approved_by", "approved_at", "approval_reason"])
    return model

"""Which models fit a dataset: same scan step, same elements (or element-agnostic)."""
from xrfweb.jobs.services import fitting_problem


def rank_models(dataset, models) -> list[tuple]:
    """[(model, problem)] with the fitting models first (problem == ""), closest scan step first."""
    def closeness(model):
        step, pixel = model.scan_step_nm, dataset.pixel_nm
        return abs(pixel - step) / step if step and pixel else 1.0

    ranked = [(m, fitting_problem(dataset, m)) for m in models]
    return sorted(ranked, key=lambda pair: (bool(pair[1]), closeness(pair[0]), pair[0].name))

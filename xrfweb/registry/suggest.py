"""Which models fit a dataset: the one fit rule (enhancer.fit), best first."""
from enhancer.fit import rank

from xrfweb.jobs.services import model_fit


def rank_models(dataset, models) -> list[tuple]:
    """[(model, Fit)] with the fitting models first, the closest to what they were made for first."""
    return rank([(m, model_fit(dataset, m)) for m in models])

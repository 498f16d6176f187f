"""model.json as a typed, checked object: read once, wrong types and unknown fields refused by
name (on upload, load and save). numpy only, no torch: the web reads a model's config with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

import numpy as np

from . import UserError
from .degrade import Degradation
from .map_scale import PERCENTILE, SIGMA_PX

FORMAT = "xrfweb-model"
MAX_BLOCKS, MAX_FILTERS = 64, 256  # a config asking for more is not one of ours


def _bad(field: str, what: str, value) -> UserError:
    return UserError(f"model.json: {field} must be {what}, not {json.dumps(value, default=str)[:60]}")


def _number(value, field: str, *, integer=False, optional=False, positive=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            (integer and not float(value).is_integer()):
        raise _bad(field, "an integer" if integer else "a number", value)
    if positive and value <= 0:
        raise _bad(field, "positive", value)
    return int(value) if integer else float(value)


def _text(value, field: str, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _bad(field, "text", value)
    return value


def _section(d, field: str, known, required=()) -> dict:
    """A JSON object with only the known keys and all the required ones."""
    if not isinstance(d, dict):
        raise _bad(field, "an object", d)
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise UserError(f"model.json: unknown field {field + '.' if field else ''}{unknown[0]}")
    missing = [k for k in required if k not in d]
    if missing:
        raise UserError(f"model.json: {field + '.' if field else ''}{missing[0]} is missing")
    return d


def _range(value, field: str, integer=False) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _bad(field, "[low, high]", value)
    low, high = (_number(v, field, integer=integer, positive=True) for v in value)
    if low > high:
        raise _bad(field, "[low, high] with low <= high", value)
    return low, high


NUMBER = (int, float)
# The records' fields and their types (a dict: a section checked field by field; a list
# [spec]: each item). Pages show them, so a wrong type or an unknown key is refused, naming the
# field, on upload and on load. None stands for an absent value anywhere.
_PROTOCOL = {"pixel_nm": NUMBER, "probe_fwhm_nm": NUMBER, "scale": NUMBER, "counts": NUMBER}
RECORD_TYPES = {
    "training": dict,
    "metrics": {"validation_psnr": NUMBER, "validation_ssim": NUMBER},
    "benchmark": {"case": str, "protocol": _PROTOCOL, "machine": str, "software_version": str,
                  "command": str,
                  "results": [{"case": str, "set": str, "summary": {"*": {"*": NUMBER}}}],
                  # a conditioned model's (bench_universal.py)
                  "mean_margin_db": NUMBER, "worst_margin_db": NUMBER, "max_totals_error": NUMBER,
                  "grid": (list, dict), "misstated_probe": (list, dict), "protocol_cases": (list, dict)},
}


def _check_types(value, spec, where: str) -> None:
    if value is None:
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise UserError(f"model.json: {where} must be a section (an object)")
        for key, item in value.items():
            field = f"{where}.{key}" if where else str(key)
            if key not in spec and "*" not in spec:
                raise UserError(f"model.json: unknown field {field}")
            _check_types(item, spec.get(key, spec.get("*")), field)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise UserError(f"model.json: {where} must be a list")
        for i, item in enumerate(value):
            _check_types(item, spec[0], f"{where}[{i}]")
    elif not isinstance(value, spec) or (isinstance(value, bool) and spec is not bool):
        kinds = spec if isinstance(spec, tuple) else (spec,)
        names = " or ".join(sorted({"a number" if k in NUMBER else {str: "text", list: "a list",
                                    dict: "a section"}[k] for k in kinds}))
        raise UserError(f"model.json: {where} must be {names}, not {type(value).__name__}")


@dataclass(frozen=True)
class Architecture:
    channels: int
    blocks: int
    filters: int
    condition_channels: int = 0  # a conditioned (universal) model's extra input planes

    @classmethod
    def from_dict(cls, d) -> "Architecture":
        _section(d, "architecture", ("channels", "blocks", "filters", "condition_channels"),
                 ("channels", "blocks", "filters"))
        arch = cls(*(_number(d.get(k, 0), f"architecture.{k}", integer=True)
                     for k in ("channels", "blocks", "filters", "condition_channels")))
        if not (1 <= arch.channels <= 64 and 0 <= arch.blocks <= MAX_BLOCKS
                and 1 <= arch.filters <= MAX_FILTERS and 0 <= arch.condition_channels <= 16):
            raise UserError("model.json asks for an architecture outside the supported sizes")
        return arch


@dataclass(frozen=True)
class Normalisation:
    """How each map is scaled before the network sees it (map_scale.py): train writes it,
    enhance reads it."""
    kind: str = "smoothed-percentile"
    percentile: float = PERCENTILE
    sigma_px: float = SIGMA_PX
    inverse: str = "multiply back, clip at 0, restore each element's mean"

    @classmethod
    def from_dict(cls, d) -> "Normalisation":
        _section(d, "normalisation", ("kind", "percentile", "sigma_px", "inverse"))
        n = cls(_text(d.get("kind", cls.kind), "normalisation.kind"),
                _number(d.get("percentile", cls.percentile), "normalisation.percentile", positive=True),
                _number(d.get("sigma_px", cls.sigma_px), "normalisation.sigma_px"),
                _text(d.get("inverse", cls.inverse), "normalisation.inverse"))
        if n.kind != "smoothed-percentile" or not 50 <= n.percentile <= 100 or n.sigma_px < 0:
            raise UserError("model.json: normalisation must be smoothed-percentile, percentile "
                            "50-100, sigma_px >= 0")
        return n


@dataclass(frozen=True)
class Conditions:
    """The ranges a conditioned model takes (enhancer/fit.py decides what fits them)."""
    probe_fwhm_px: tuple[float, float]
    scale: tuple[int, int]
    counts: tuple[float, float]
    vector: str = ""  # how the conditions are given to the network, in words
    start: str = ""  # what the network starts from, in words

    @classmethod
    def from_dict(cls, d) -> "Conditions":
        _section(d, "conditions", ("probe_fwhm_px", "scale", "counts", "vector", "start"),
                 ("probe_fwhm_px", "scale", "counts"))
        return cls(_range(d["probe_fwhm_px"], "conditions.probe_fwhm_px"),
                   _range(d["scale"], "conditions.scale", integer=True),
                   _range(d["counts"], "conditions.counts"),
                   _text(d.get("vector", ""), "conditions.vector"),
                   _text(d.get("start", ""), "conditions.start"))


DEGRADATION_FIELDS = {"probe_fwhm_nm": dict(positive=True), "pixel_nm": dict(positive=True),
                      "scale": dict(integer=True, positive=True), "counts": dict(optional=True, positive=True),
                      "read_noise": {}, "probe_fwhm_y_nm": dict(optional=True, positive=True),
                      "measured_probe_pixel_nm": dict(optional=True, positive=True)}


def _probe_rows(rows) -> list:
    """A measured probe in model.json: rows of equal length of finite non-negative numbers."""
    try:
        a = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or a.ndim != 2 or min(a.shape) < 1 or not np.isfinite(a).all() or a.min() < 0 or a.sum() <= 0:
        raise _bad("degradation.measured_probe", "rows of non-negative numbers (a 2-D probe intensity)",
                   "a list that is not one")
    return rows
RECORDS = ("training", "metrics", "benchmark")  # what happened to the model: kept as written


@dataclass(frozen=True)
class ModelConfig:
    """model.json, read once and checked: wrong types and unknown fields are refused by name."""
    architecture: Architecture
    name: str = ""
    software_version: str = ""
    elements: str | tuple[str, ...] = "any"  # "any": element-agnostic, else the trained order
    pixel_nm: float | None = None  # the fine (output) pixel; None for a conditioned model
    scale: int | None = None
    degradation: Degradation | None = None  # the forward model it was trained on
    normalisation: Normalisation = Normalisation()
    conditions: Conditions | None = None
    command: str | None = None  # the commands that made it, joined by " && "
    description: str = ""
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    benchmark: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, complete: bool = True) -> "ModelConfig":
        """complete=False: a config still being built (training, tests) may lack the step."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise UserError(f"model.json is not an xrfweb model config (its 'format' must be {FORMAT!r})")
        known = ("format",) + tuple(f.name for f in fields(cls))
        _section(d, "", known, ("architecture",))
        arch = Architecture.from_dict(d["architecture"])
        conditioned = "conditions" in d
        conditions = Conditions.from_dict(d["conditions"]) if conditioned else None
        if conditioned != bool(arch.condition_channels):
            raise UserError("model.json: a conditioned model needs both conditions and "
                            "architecture.condition_channels")
        elements = d.get("elements", "any")
        if elements != "any" and not (isinstance(elements, list) and elements
                                      and all(isinstance(e, str) for e in elements)):
            raise _bad("elements", '"any" or a list of element names', elements)
        if not conditioned and complete:
            _section(d, "", known, ("pixel_nm", "scale", "degradation"))
        degradation = None
        if "degradation" in d:
            deg = _section(d["degradation"], "degradation", tuple(DEGRADATION_FIELDS) + ("mode", "measured_probe"),
                           ("probe_fwhm_nm", "pixel_nm"))
            values = {k: _number(deg[k], f"degradation.{k}", **DEGRADATION_FIELDS[k])
                      for k in DEGRADATION_FIELDS if k in deg}
            if deg.get("measured_probe") is not None:
                values["measured_probe"] = _probe_rows(deg["measured_probe"])
                if values.get("measured_probe_pixel_nm") is None:
                    raise UserError("model.json: degradation.measured_probe needs measured_probe_pixel_nm")
            if "mode" in deg and deg["mode"] not in ("box", "point"):
                raise _bad("degradation.mode", '"box" or "point"', deg["mode"])
            degradation = Degradation(**values, **({"mode": deg["mode"]} if "mode" in deg else {}))
        scale = _number(d.get("scale"), "scale", integer=True, optional=True, positive=True)
        if scale is not None and scale > 16:
            raise UserError("model.json: scale must be 1 to 16")
        for record in RECORDS:
            if not isinstance(d.get(record, {}), dict):
                raise _bad(record, "an object", d[record])
            _check_types(d.get(record), RECORD_TYPES[record], record)
        return cls(
            architecture=arch, name=_text(d.get("name", ""), "name"),
            software_version=_text(d.get("software_version", ""), "software_version"),
            elements=elements if elements == "any" else tuple(elements),
            pixel_nm=_number(d.get("pixel_nm"), "pixel_nm", optional=True, positive=True),
            scale=scale, degradation=degradation,
            normalisation=Normalisation.from_dict(d.get("normalisation", {})),
            conditions=conditions,
            command=_text(d.get("command"), "command", optional=True),
            description=_text(d.get("description", ""), "description"),
            **{record: d.get(record, {}) for record in RECORDS})

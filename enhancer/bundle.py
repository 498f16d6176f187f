"""The one model format: a folder with `model.safetensors` (weights) and `model.json` (everything
needed to rebuild and use the network). Loading never unpickles anything.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import UserError, __version__
from .degrade import Degradation
from .network import ResidualEnhancer

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
WEIGHTS, CONFIG = "model.safetensors", "model.json"
FORMAT = "xrfweb-model"
MAX_BLOCKS, MAX_FILTERS = 64, 256  # a config asking for more is not one of ours


class Bundle:
    def __init__(self, network: ResidualEnhancer, config: dict, path: Path | None = None):
        self.network = network.eval()
        self.config = config
        self.path = path

    @property
    def name(self) -> str:
        return self.config.get("name") or (self.path.name if self.path else "unnamed")

    @property
    def conditions(self) -> dict | None:
        """The ranges of a conditioned model (universal); None for a single-condition one."""
        return self.config.get("conditions")

    @property
    def scale(self) -> int:
        return int(self.config["scale"])

    @property
    def pixel_nm(self) -> float:
        """The fine grid's pixel; the model expects scans with a step of scale * pixel_nm."""
        return float(self.config["pixel_nm"])

    @property
    def degradation(self) -> Degradation:
        return Degradation.from_dict(self.config["degradation"])

    @property
    def elements(self):
        """"any" for an element-agnostic model, else the ordered list it was trained for."""
        return self.config.get("elements", "any")


def shipped_bundles() -> list[Path]:
    return sorted(p for p in SHIPPED_DIR.glob("*") if (p / CONFIG).is_file() and (p / WEIGHTS).is_file())


NUMBER = (int, float)
# The fields model.json may hold and their types (a dict: a section checked field by field;
# a list [spec]: each item). Pages show these, so a wrong type or an unknown key is refused,
# naming the field, on upload and on load. None stands for an absent value anywhere.
_PROTOCOL = {"pixel_nm": NUMBER, "probe_fwhm_nm": NUMBER, "scale": NUMBER, "counts": NUMBER}
SCHEMA = {
    "format": str, "software_version": str, "name": str, "elements": (str, list),
    "pixel_nm": NUMBER, "scale": int, "degradation": dict, "normalisation": dict,
    "architecture": dict, "conditions": dict, "command": str, "training": dict,
    "metrics": {"validation_psnr": NUMBER, "validation_ssim": NUMBER},
    "benchmark": {"case": str, "protocol": _PROTOCOL, "machine": str, "software_version": str,
                  "command": str,
                  "results": [{"case": str, "set": str, "summary": {"*": {"*": NUMBER}}}]},
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


def _check_config(config: dict) -> dict:
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UserError(f"model.json is not an xrfweb model config (its 'format' must be {FORMAT!r})")
    _check_types(config, SCHEMA, "")
    if isinstance(config.get("elements"), list) and not all(isinstance(e, str) for e in config["elements"]):
        raise UserError("model.json: elements must be a list of element names (text)")
    arch = config.get("architecture")
    try:
        channels, blocks, filters = (int(arch[k]) for k in ("channels", "blocks", "filters"))
        if not 0 <= int(arch.get("condition_channels", 0)) <= 16 or ("conditions" in config) != bool(arch.get("condition_channels")):
            raise ValueError("'conditions' (a conditioned model needs both it and condition_channels)")
        if "conditions" in config:  # one network for a range of conditions: no single scale or probe
            scale, pixel_nm = 1, 1.0
        else:
            scale, pixel_nm = int(config["scale"]), float(config["pixel_nm"])
            Degradation.from_dict(config["degradation"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"model.json is missing or has a bad value for {e}") from None
    if not (1 <= channels <= 64 and 0 <= blocks <= MAX_BLOCKS and 1 <= filters <= MAX_FILTERS):
        raise UserError("model.json asks for an architecture outside the supported sizes")
    if scale < 1 or scale > 16 or pixel_nm <= 0:
        raise UserError("model.json needs scale in 1..16 and a positive pixel_nm")
    return config


def check_config(config) -> dict:
    """model.json's content checked against the schema (on upload and whenever it is read)."""
    return _check_config(config)


def build(config: dict, weights: dict[str, torch.Tensor]) -> ResidualEnhancer:
    arch = config["architecture"]
    net = ResidualEnhancer(int(arch["channels"]), int(arch["blocks"]), int(arch["filters"]),
                           int(arch.get("condition_channels", 0)))
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise UserError(f"the weights do not match the architecture in model.json: {str(e)[:200]}") from None
    return net.eval()


def validate_bundle_files(weights_path, config_path) -> dict:
    """Check an uploaded pair before anything is stored; returns the config."""
    try:
        config = json.loads(Path(config_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"model.json is not valid JSON: {e}") from None
    _check_config(config)
    build(config, _read_weights(weights_path))
    return config


def _read_weights(path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"the weights file is not a readable safetensors file ({e})") from None


def load_bundle(name_or_dir) -> Bundle:
    """A shipped model by name (e.g. "protocol-a") or a bundle folder."""
    path = Path(name_or_dir)
    if not (path / CONFIG).is_file() and (SHIPPED_DIR / str(name_or_dir) / CONFIG).is_file():
        path = SHIPPED_DIR / str(name_or_dir)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        names = ", ".join(p.name for p in shipped_bundles()) or "none"
        raise UserError(f"no model at {name_or_dir!r}: give a folder with {WEIGHTS} and {CONFIG}, or a shipped name ({names})")
    config = validate_bundle_files(path / WEIGHTS, path / CONFIG)
    return Bundle(build(config, _read_weights(path / WEIGHTS)), config, path)


def save_bundle(directory, network: ResidualEnhancer, config: dict) -> Path:
    """Write weights and config atomically (temp folder, rename), so a reader never sees half."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "software_version": __version__, **config,
              "architecture": dict(network.args)}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS))
    (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=float))
    directory.mkdir(exist_ok=True)
    for f in (WEIGHTS, CONFIG):
        (tmp / f).chmod(0o644)  # readable by the web and worker users, like any shipped file
        os.replace(tmp / f, directory / f)
    tmp.rmdir()
    return directory

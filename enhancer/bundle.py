"""The one model format: a folder with `model.safetensors` (weights) and `model.json` (everything
needed to rebuild and use the network). Loading never unpickles anything.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError

from . import UserError, __version__
from .degrade import Degradation
from .model_config import (FORMAT, Architecture, Conditions, ModelConfig,  # noqa: F401 (the bundle's API)
                           Normalisation)

# torch (safetensors.torch, .network) is imported inside the functions that build or write a
# network: find_bundle, and so the CLI's refusals, run without its ~2 s import.

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
WEIGHTS, CONFIG = "model.safetensors", "model.json"


class Bundle:
    """A network and its model.json: `config` is the JSON as stored (what the web keeps and
    shows), `spec` the same checked and typed, which the code reads."""

    def __init__(self, network: ResidualEnhancer, config: dict, path: Path | None = None):
        self.network = network.eval()
        self.config = config
        self.path = path
        # the network is the truth about its own architecture (a config being built has none yet)
        self.spec = ModelConfig.from_dict({**config, "format": FORMAT, "architecture": dict(network.args)},
                                          complete=False)

    @property
    def name(self) -> str:
        return self.spec.name or (self.path.name if self.path else "unnamed")

    @property
    def conditions(self) -> dict | None:
        """The ranges of a conditioned model (universal); None for a single-condition one."""
        return self.config.get("conditions")

    @property
    def scale(self) -> int:
        return self.spec.scale

    @property
    def pixel_nm(self) -> float:
        """The fine grid's pixel; the model expects scans with a step of scale * pixel_nm."""
        return self.spec.pixel_nm

    @property
    def degradation(self) -> Degradation:
        return self.spec.degradation

    @property
    def elements(self):
        """"any" for an element-agnostic model, else the ordered list it was trained for."""
        return self.spec.elements if self.spec.elements == "any" else list(self.spec.elements)


def shipped_bundles() -> list[Path]:
    return sorted(p for p in SHIPPED_DIR.glob("*") if (p / CONFIG).is_file() and (p / WEIGHTS).is_file())


def check_config(config) -> dict:
    """model.json's content checked (ModelConfig: UserError naming the field); returns it."""
    ModelConfig.from_dict(config)
    return config


def build(arch: Architecture, weights: dict[str, torch.Tensor]) -> ResidualEnhancer:
    from .network import ResidualEnhancer

    net = ResidualEnhancer(arch.channels, arch.blocks, arch.filters, arch.condition_channels)
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise UserError(f"the weights do not match the architecture in model.json: {str(e)[:200]}") from None
    return net.eval()


def _read_config(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"model.json is not valid JSON: {e}") from None


def validate_bundle_files(weights_path, config_path) -> dict:
    """Check an uploaded pair before anything is stored (the config against ModelConfig, the
    weights against its architecture); returns the config."""
    config = _read_config(config_path)
    build(ModelConfig.from_dict(config).architecture, _read_weights(weights_path))
    return config


def _read_weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"the weights file is not a readable safetensors file ({e})") from None


def find_bundle(name_or_dir) -> tuple[Path, dict]:
    """A shipped model by name (e.g. "protocol-a") or a bundle folder: its folder and its checked
    model.json, without torch (the CLI refuses a command by the config before loading weights)."""
    path = Path(name_or_dir)
    if not (path / CONFIG).is_file() and (SHIPPED_DIR / str(name_or_dir) / CONFIG).is_file():
        path = SHIPPED_DIR / str(name_or_dir)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        names = ", ".join(p.name for p in shipped_bundles()) or "none"
        raise UserError(f"no model at {name_or_dir!r}: give a folder with {WEIGHTS} and {CONFIG}, or a shipped name ({names})")
    return path, check_config(_read_config(path / CONFIG))


def load_bundle(name_or_dir) -> Bundle:
    """A shipped model by name (e.g. "protocol-a") or a bundle folder."""
    path, config = find_bundle(name_or_dir)
    network = build(ModelConfig.from_dict(config).architecture, _read_weights(path / WEIGHTS))
    return Bundle(network, config, path)


def save_bundle(directory, network: ResidualEnhancer, config: dict) -> Path:
    """Write weights and config atomically (temp folder, rename), so a reader never sees half."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "software_version": __version__, **config,
              "architecture": dict(network.args)}
    ModelConfig.from_dict(config)  # nothing is written that load_bundle would refuse
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    from safetensors.torch import save_file

    save_file(state, str(tmp / WEIGHTS))
    (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=float))
    directory.mkdir(exist_ok=True)
    for f in (WEIGHTS, CONFIG):
        (tmp / f).chmod(0o644)  # readable by the web and worker users, like any shipped file
        os.replace(tmp / f, directory / f)
    tmp.rmdir()
    return directory

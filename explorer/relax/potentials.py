"""Loading interatomic potentials (matgl M3GNet, or CHGNet as the offline fallback) and the M3GNet Eform model.

``load_potential(spec)`` accepts:

* ``"m3gnet"`` (default): ``M3GNet-MP-2021.2.8-PES`` from the models directory (see
  :func:`explorer.config.models_dir`); when those weights are absent, CHGNet (its weights ship with the
  ``chgnet`` package) with a warning;
* ``"chgnet"``: CHGNet 0.3.0;
* a path to a saved matgl model directory (``model.json``, ``model.pt``, ``state.pt``);
* the name of a directory inside the models directory;
* otherwise a matgl model name, loaded by ``matgl.load_model(name)`` (downloads; needs internet).

Weights saved by matgl < 3.0 get the old M3GNet node aggregation back (:mod:`explorer.relax.compat`): decided
by ``legacy`` (``None`` = guess from the directory, see :func:`~explorer.relax.compat.is_legacy_checkpoint`).
Downloaded models are taken as current unless ``legacy=True``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import models_dir
from ..errors import ExplorerInputError
from ..fileio import file_sha256

DEFAULT_PES = "M3GNet-MP-2021.2.8-PES"
DEFAULT_EFORM = "M3GNet-MP-2018.6.1-Eform"
_MODEL_FILES = ("model.json", "model.pt", "state.pt")


@dataclass(frozen=True)
class PotentialSpec:
    """What is needed to load the same potential again (in a worker process): picklable."""

    kind: str  # "matgl" or "chgnet"
    source: str  # model directory or matgl model name; "" for chgnet
    legacy: bool = False


@dataclass
class Potential:
    """A loaded potential: ``calculator()`` gives a fresh ASE calculator (eV, eV/Å, eV/Å³)."""

    name: str
    spec: PotentialSpec
    model: Any = field(repr=False)
    fingerprint: str = ""
    elements: frozenset[str] | None = None

    def calculator(self):
        if self.spec.kind == "chgnet":
            from chgnet.model.dynamics import CHGNetCalculator

            with contextlib.redirect_stdout(io.StringIO()):
                return CHGNetCalculator(self.model, use_device="cpu", on_isolated_atoms="ignore")
        from matgl.ext.ase import PESCalculator

        return PESCalculator(self.model, stress_unit="eV/A3")

    def unsupported_elements(self, symbols) -> list[str]:
        """Elements of ``symbols`` the potential was not trained on (empty when it does not say)."""
        if self.elements is None:
            return []
        return sorted(set(symbols) - self.elements)


# sha256 of the files of the matgl models explorer knows by name (the pre-matgl-3 releases in the models folder):
# a folder of that name whose files differ is refused before anything in it is loaded.
KNOWN_MODELS = {
    DEFAULT_PES: {"model.json": "05e7db8676ceb37eb07848aff49c556b188699e1035f3df0cbbf1a2c4959148f",
                  "model.pt": "62678f76fbc5d8997ea1d7f3c4bf086df200102125c802b32b08ce14fbcde25b",
                  "state.pt": "a9aa723705bd1a242ec8749332f137811c4a94e17995a564f8f94a9aca68061b"},
    DEFAULT_EFORM: {"model.json": "a99ca70012706a09434617a793556bbd100423dafaa9f9ebb8708fd20e226575",
                    "model.pt": "d4d6a8b5c871fff515db4948ea7439d8c7825a9ee3240567afeedabadd686b58",
                    "state.pt": "166d4dba4aadbc5feb27e8aa047145facbcdadb9c5de067768e00515be3b3c1f"},
}


def check_known_model(path: Path) -> None:
    """One-line error when ``path`` is named like a model of :data:`KNOWN_MODELS` but its files do not have the
    published sha256 (a corrupted or replaced download). Folders of other names are the user's own choice."""
    expected = KNOWN_MODELS.get(Path(path).name)
    for name, digest in (expected or {}).items():
        if file_sha256(Path(path) / name) != digest:
            raise ExplorerInputError(f"{Path(path) / name} does not match the published {Path(path).name} weights "
                                     "(sha256); replace the folder with the original files")


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in _MODEL_FILES)


def m3gnet_available(models: str | os.PathLike | None = None) -> bool:
    """Whether the default M3GNet weights are in the models directory (no loading, no CHGNet fallback)."""
    return _is_model_dir(models_dir(models) / DEFAULT_PES)


def _file_digest(path: Path) -> str:
    return file_sha256(path)[:12]


def _matgl_elements(model) -> frozenset[str] | None:
    inner = getattr(model, "model", model)
    types = getattr(inner, "element_types", None)
    return frozenset(types) if types else None


def _import_matgl():
    try:
        import matgl
    except ImportError as exc:
        raise ExplorerInputError(f"matgl is not installed (pip install 'matgl>=4.1'): {exc}") from None
    return matgl


def _load_matgl_dir(path: Path, legacy: bool | None):
    matgl = _import_matgl()
    from . import compat

    check_known_model(path)
    legacy = compat.is_legacy_checkpoint(path) if legacy is None else legacy
    try:
        model = compat.load_legacy_model(path) if legacy else matgl.load_model(path)
    except Exception as exc:
        raise ExplorerInputError(f"cannot load the matgl model in {path}: {_reason(exc)}") from None
    return _inference_mode(model), legacy


def _inference_mode(model):
    """``model.eval()``: matgl's loaders leave models in training mode, where ``Potential`` keeps the autograd
    graph of the forces for a second derivative (about twice the work per evaluation). Same numbers."""
    model.eval()
    return model


def _reason(exc: BaseException) -> str:
    """First line of the innermost cause (matgl wraps the useful message in generic ones)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextmanager
def _quiet(*names: str):
    """Silence the retry/warning log lines of a download that may fail (the caller reports one error)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _check_is_potential(model, where: str) -> None:
    from matgl.apps.pes import Potential as MatglPotential

    if not isinstance(model, MatglPotential):
        raise ExplorerInputError(f"{where} is a {type(model).__name__}, not an interatomic potential (PES)")


def _load_chgnet(reason: str | None = None) -> Potential:
    try:
        from chgnet.model import CHGNet
    except ImportError:
        detail = f"{reason}; " if reason else ""
        raise ExplorerInputError(f"{detail}CHGNet is not installed (pip install chgnet)") from None
    if reason:
        warnings.warn(f"{reason}; using CHGNet instead", stacklevel=3)
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet's banner is not the user's business
        model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    from pymatgen.core import Element

    elements = frozenset(Element.from_Z(z).symbol for z in range(1, 95))
    return Potential(name="CHGNet-0.3.0", spec=PotentialSpec("chgnet", ""), model=model,
                     fingerprint="chgnet-0.3.0", elements=elements)


def load_potential(potential: str | os.PathLike | Potential | PotentialSpec | None = "m3gnet",
                   models: str | os.PathLike | None = None, legacy: bool | None = None) -> Potential:
    """Load an interatomic potential (see the module docstring for what ``potential`` may be)."""
    if isinstance(potential, Potential):
        return potential
    if isinstance(potential, PotentialSpec):
        if potential.kind == "chgnet":
            return _load_chgnet()
        return load_potential(potential.source, legacy=potential.legacy)
    spec = "m3gnet" if potential is None else str(potential)
    if spec.lower() == "chgnet":
        return _load_chgnet()
    root = models_dir(models)
    if spec.lower() == "m3gnet":
        path = root / DEFAULT_PES
        if not _is_model_dir(path):
            return _load_chgnet(f"no M3GNet weights in {path} (set EXPLORER_MODELS_DIR)")
    elif _is_model_dir(Path(spec)):
        path = Path(spec)
    elif "/" not in spec and os.sep not in spec and _is_model_dir(root / spec):
        path = root / spec
    elif Path(spec).exists() or spec.startswith((".", os.sep, "~")):
        raise ExplorerInputError(f"no matgl model (model.json, model.pt, state.pt) in {spec}")
    else:
        return _load_matgl_name(spec, legacy)
    model, legacy = _load_matgl_dir(path, legacy)
    _check_is_potential(model, str(path))
    fingerprint = f"{path.name}-{_file_digest(path / 'state.pt')}{'-legacy' if legacy else ''}"
    return Potential(name=path.name, spec=PotentialSpec("matgl", str(path.resolve()), legacy), model=model,
                     fingerprint=fingerprint, elements=_matgl_elements(model))


_SHARED: dict[str, Potential] = {}
_SHARED_LOCK = threading.Lock()


def shared_potential(potential: str | Potential = "m3gnet") -> Potential:
    """:func:`load_potential` once per process and spec: the app's relaxations and ``explorer.modify`` reuse
    the same loaded model (loading M3GNet takes seconds). A loaded :class:`Potential` is returned as is."""
    if isinstance(potential, Potential):
        return potential
    with _SHARED_LOCK:
        if str(potential) not in _SHARED:
            _SHARED[str(potential)] = load_potential(potential)
        return _SHARED[str(potential)]


def _load_matgl_name(name: str, legacy: bool | None) -> Potential:
    """A model from matgl's model hub, through ``matgl.load_model`` (needs internet the first time)."""
    matgl = _import_matgl()
    from . import compat

    try:
        with _quiet("huggingface_hub", "matgl"):
            model = matgl.load_model(name)
    except Exception as exc:
        raise ExplorerInputError(f"cannot load matgl model {name!r} (a name is downloaded from matgl's model "
                                 f"hub; a local model is a directory): {_reason(exc)}") from None
    _check_is_potential(model, name)
    _inference_mode(model)
    if legacy:
        compat.restore_legacy_node_aggregation(model)
    fingerprint = name.replace("/", "_") + ("-legacy" if legacy else "")
    return Potential(name=name, spec=PotentialSpec("matgl", name, bool(legacy)), model=model,
                     fingerprint=fingerprint, elements=_matgl_elements(model))


class FormationEnergyModel:
    """Fast formation-energy estimate (eV/atom) from the M3GNet Eform model, no relaxation or references."""

    def __init__(self, model, name: str):
        self.model = model
        self.name = name
        self.elements = _matgl_elements(model)

    def predict(self, structure) -> float:
        """Formation energy per atom of one pymatgen Structure; NaN for unsupported elements or failures."""
        if self.elements is not None and {e.symbol for e in structure.composition} - self.elements:
            return math.nan
        try:
            value = float(self.model.predict_structure(structure))
        except Exception:
            return math.nan
        return value if math.isfinite(value) else math.nan

    def predict_many(self, structures) -> list[float]:
        return [self.predict(s) for s in structures]


def load_formation_model(path: str | os.PathLike | None = None, models: str | os.PathLike | None = None,
                         legacy: bool | None = None) -> FormationEnergyModel:
    """The M3GNet formation-energy model (default ``M3GNet-MP-2018.6.1-Eform`` in the models directory)."""
    path = Path(path) if path is not None else models_dir(models) / DEFAULT_EFORM
    if not _is_model_dir(path):
        raise ExplorerInputError(f"no M3GNet Eform model in {path} (set EXPLORER_MODELS_DIR)")
    model, _ = _load_matgl_dir(path, legacy)
    return FormationEnergyModel(model, path.name)


__all__ = ["FormationEnergyModel", "Potential", "PotentialSpec", "load_formation_model", "load_potential",
           "m3gnet_available", "shared_potential"]

"""The one registry of generators: ``pretrained/manifest.json``.

The manifest lists every shipped model (name, family, task, file, method, sampler, data, training command,
steps, measured metrics, sha256) and names the default of each task (``default``: generation,
``default_modification``); ``default_by_conditions`` lists, best first, the generation models a request picks
from by the conditions it sets (formula + space group: the first that takes them; + energy: the first that
also takes the energy), :func:`default_model` with ``given``. ``explorer generate --model``, ``explorer
modify --model``, ``explorer evaluate``, ``explorer models`` and the app's selectors all read it through this
module.

A family is the sub-package ``explorer.generators.<family>`` with a function ``generator_class(task)`` (the
:class:`~explorer.generators.base.Generator` subclass for that task); a new family is one folder plus its
manifest entries — nothing here changes.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..config import PRETRAINED_DIR
from ..errors import ExplorerInputError
from ..fileio import file_sha256
from .base import TASKS

DEFAULT_KEYS = {"generation": "default", "modification": "default_modification"}
SUMMARY_SPLITS = ("val", "test")
SUMMARY_METRICS = ("n", "match_rate", "match_rate_loose", "rmse", "validity", "spacegroup_rate")


@dataclass
class ModelInfo:
    """One manifest entry. ``info`` is the whole entry as written (data, command, metrics, sha256, ...)."""

    name: str
    family: str
    task: str
    file: str
    method: str
    sampler: str | None
    aliases: tuple[str, ...] = ()
    info: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_entry(cls, entry: dict) -> ModelInfo:
        return cls(name=entry["name"], family=entry.get("family", "matrix"), task=entry.get("task", "generation"),
                   file=entry["file"], method=entry["method"], sampler=entry.get("sampler"),
                   aliases=tuple(entry.get("aliases", ())), info=entry)

    @property
    def generator_class(self):
        """The family's :class:`~explorer.generators.base.Generator` subclass for this task (imports the family,
        loads no weights)."""
        try:
            module = importlib.import_module(f"{__package__}.{self.family}")
        except ModuleNotFoundError:
            raise ExplorerInputError(f"model {self.name!r} belongs to the unknown generator family "
                                     f"{self.family!r}") from None
        return module.generator_class(self.task)

    @property
    def conditions(self) -> list[str]:
        return sorted(self.generator_class.conditions)

    def summary(self) -> dict:
        """What ``explorer models`` shows: name, family, task, conditions taken, parameters and the measured
        val/test metrics of the manifest."""
        metrics = {split: {k: values[k] for k in SUMMARY_METRICS if k in values}
                   for split, values in self.info.get("metrics", {}).items() if split in SUMMARY_SPLITS}
        return {"name": self.name, "family": self.family, "task": self.task, "conditions": self.conditions,
                "parameters": self.info.get("parameters"), "metrics": metrics}


def read_manifest(directory: Path = PRETRAINED_DIR) -> dict:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ExplorerInputError(f"no pretrained manifest at {path}")
    return json.loads(path.read_text())


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ExplorerInputError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def model_infos(task: str | None = None, directory: Path = PRETRAINED_DIR) -> list[ModelInfo]:
    """Every shipped model (of ``task``, 'generation' or 'modification', when given), in manifest order."""
    _check_task(task)
    infos = [ModelInfo.from_entry(e) for e in read_manifest(directory)["models"]]
    return [m for m in infos if task is None or m.task == task]


def available_models(task: str | None = None, directory: Path = PRETRAINED_DIR) -> list[str]:
    """Names of the shipped models (only those of ``task`` when given)."""
    return [m.name for m in model_infos(task, directory)]


def default_model(task: str = "generation", directory: Path = PRETRAINED_DIR, given=None) -> str:
    """The manifest's default model of ``task`` (the best on validation). With ``given`` (the names of the
    conditions a generation request sets, :meth:`GenerationRequest.given`): the first model of the manifest's
    ``default_by_conditions`` that takes every one of them and needs no other, else the default."""
    _check_task(task)
    manifest = read_manifest(directory)
    name = manifest.get(DEFAULT_KEYS[task])
    if name is None:
        raise ExplorerInputError(f"no {task} model is shipped yet (pretrained/manifest.json)")
    if given is not None and task == "generation":
        given, infos = set(given), {m.name: m for m in model_infos(task, directory)}
        for candidate in manifest.get("default_by_conditions", ()):
            info = infos.get(candidate)
            if info is not None and given <= info.generator_class.conditions \
                    and info.generator_class.required <= given:
                return candidate
    return name


def model_info(name: str | None = None, task: str | None = None, directory: Path = PRETRAINED_DIR) -> ModelInfo:
    """The entry of a model by name or alias (None: the default of ``task``, generation if not given). With
    ``task``, a model of another task is a one-line error that says which command takes it."""
    name = name or default_model(task or "generation", directory)
    infos = model_infos(None, directory)
    found = next((m for m in infos if m.name == name), None) or next((m for m in infos if name in m.aliases), None)
    if found is None:
        names = ", ".join(m.name for m in infos if task is None or m.task == task)
        raise ExplorerInputError(f"unknown model {name!r}; available: {names}")
    if task is not None and found.task != task:
        use = "explorer.modify / `explorer modify`" if found.task == "modification" else \
            "explorer.generate / `explorer generate`"
        raise ExplorerInputError(f"model {found.name!r} is a {found.task} model, not a {task} model; use {use} "
                                 "for it")
    return found


def checkpoint_path(info: ModelInfo, directory: Path = PRETRAINED_DIR) -> Path:
    """The checkpoint file of a shipped model, checked against the manifest's sha256 (one-line error when it is
    missing or altered)."""
    path = Path(directory) / info.file
    if not path.is_file():
        raise ExplorerInputError(f"checkpoint not found: {path}")
    expected = info.info.get("sha256")
    if expected and file_sha256(path) != expected:
        raise ExplorerInputError(f"checkpoint {path.name} does not match its manifest sha256 (corrupted file?)")
    return path


@lru_cache(maxsize=16)
def get_generator(name: str | None = None, task: str | None = None, directory: Path = PRETRAINED_DIR):
    """The :class:`~explorer.generators.base.Generator` of a shipped model by name or alias (None: the default
    of ``task``); built once per process."""
    info = model_info(name, task, directory)
    return info.generator_class(info, Path(directory))


def list_generators(task: str | None = None, directory: Path = PRETRAINED_DIR) -> list[dict]:
    """:meth:`ModelInfo.summary` of every shipped model (of ``task`` when given)."""
    return [m.summary() for m in model_infos(task, directory)]

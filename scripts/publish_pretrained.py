"""Export trained runs to ``pretrained/`` (fp16 EMA weights) and (re)write ``pretrained/manifest.json``.

Usage:
    python scripts/publish_pretrained.py --runs runs --results benchmarks/results [--default NAME]
    python scripts/publish_pretrained.py --only cfm-normal --run cfm-normal=cfm-normal-continued

``--only`` re-exports just those models and keeps every other entry of the current manifest. A run trained
with ``--init-from`` (warm start) is recorded as the continuation of the manifest's current entry: steps,
epochs and wall time add up and both commands are kept.

Each model name maps to a run directory (``runs/<run>``) and a sampler; metrics are read from
``<results>/generation_<name>_<split>.json`` (written by ``benchmarks/evaluate_generation.sh``) when present.
The default model (no conditions given) is ``--default``, else the current manifest's, else the one with the highest
validation ``match_rate_loose``; ``default_by_conditions`` is :data:`DEFAULT_BY_CONDITIONS`.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from explorer.fileio import file_sha256
from explorer.generators.langevin.training import export_langevin
from explorer.generators.matrix.training import export_checkpoint

MODELS = {
    # name: (run directory, checkpoint file, sampler)
    "ddpm": ("ddpm-transformer", "ddpm_transformer.pt", "ddpm"),
    "ddim": ("ddpm-transformer", "ddpm_transformer.pt", "ddim"),
    "cfm-normal": ("cfm-normal-transformer", "cfm_normal_transformer.pt", "euler"),
    "cfm-uniform": ("cfm-uniform-transformer", "cfm_uniform_transformer.pt", "euler"),
    "cfm-uniform-unet1d": ("cfm-uniform-unet1d", "cfm_uniform_unet1d.pt", "euler"),
    "mod-regression": ("mod-regression-transformer", "mod_regression_transformer.pt", None),
    "mod-palette": ("mod-palette-transformer", "mod_palette_transformer.pt", "ddpm"),
    "mod-cfm": ("mod-cfm-transformer", "mod_cfm_transformer.pt", "euler"),
    "mod-palette-cfm": ("mod-palette-cfm-transformer", "mod_palette_cfm_transformer.pt", "euler"),
    "langevin": ("langevin", "langevin_dimenetpp.pt", "langevin"),
    "descriptor-mp": ("descriptor-mp", "descriptor_mp.pt", "ddpm"),
    "descriptor-perov": ("descriptor-perov", "descriptor_perov.pt", "ddpm"),
    "descriptor-carbon": ("descriptor-carbon", "descriptor_carbon.pt", "ddpm"),
    "cspnet": ("cspnet", "cspnet_diffcsp.pt", "predictor-corrector"),
}
FAMILIES = {"langevin": "langevin", "descriptor-mp": "descriptor", "descriptor-perov": "descriptor",
            "descriptor-carbon": "descriptor", "cspnet": "diffcsp"}  # model name -> family (others: matrix)
DESCRIPTOR_DATA = {
    "mp": "mp_structures, split == train, <= 20 atoms (Niggli cells)",
    "perov": "perov_5, train + val parts (only 975 of Perov-5's train rows are here)",
    "carbon": "carbon_24, val part (only Carbon-24's val and test parts are here)",
}
# the default generation model by the conditions a request sets, best first (chosen on val: the pipeline with
# langevin for a formula and a space group, cfm-normal when an energy is set too; README "Generation pipeline")
DEFAULT_BY_CONDITIONS = ("langevin", "cfm-normal")
DESCRIPTOR_SAMPLING = {"default_steps": 1000, "reconstruction": {"trials": 6, "hops": 4, "iterations": 150,
                                                                 "starts": 8, "templates": 3}}
# per-dataset reconstruction settings on top of DESCRIPTOR_SAMPLING's, chosen on val (README "Reconstruction"):
# perov_5 exchanges unlike atoms on odd hops (first 100 val rows, loose 0.86 -> 0.93) and gives the structures
# still above the loss threshold up to 11 more rounds of trials (0.93 -> 0.98 with 6 rounds, 0.99 with 12; strict
# 0.66 -> 0.89 -> 0.95); on MP's first
# 30 val rows swaps changed nothing (0.867 either way), so its reported settings stay; carbon: one element
DESCRIPTOR_RECONSTRUCTION = {"perov": {"swap": True, "rounds": 12}}
# how an unconditional sample's composition is decoded, chosen on val (README "Descriptor family"): MP's sampled
# block spreads over too many elements — the closest charge-neutral composition with a penalty of 0.2 per element
# (1,000 DDPM samples: SMACT 0.744 -> 0.827, EMD of the element count 0.737 -> 0.150; 32 reconstructed: COV-P
# 0.688 -> 0.813, COV-R 0.251 / 0.244); sampling again with it fixed was worse (COV-R 0.182, FD 0.356). perov_5's
# plain decode is its best (0.967 valid), carbon has one element
DESCRIPTOR_COMPOSITION = {"mp": {"neutral": True, "element_penalty": 0.2}}
LANGEVIN_SAMPLING = {"default_steps": 200, "sampler_options": {"gamma_positions": 0.8, "gamma_lattice": 0.8,
                                                               "temperature_lattice": 0.15, "steps_per_level": 10}}
DIFFCSP_SAMPLING = {"default_steps": 100, "corrector_scale": 1.0,
                    "sampling_note": "100 strided predictor-corrector steps of the 1000 timesteps: val (60 rows, one "
                                     "sample each) loose 0.100 vs 0.067 with all 1000 at a tenth of the time "
                                     "(benchmarks/results/diffcsp_steps_val.jsonl)"}
MODIFICATION_METHODS = ("regression", "palette", "cfm", "palette-cfm")
PAIRS_PER_EPOCH = 2478  # polymorph pairs drawn per modification epoch (train split)


def training_elements() -> list[int]:
    """Atomic numbers present in the training split (the support of the modification models)."""
    import numpy as np

    from explorer.data import load_training_data

    species = load_training_data(splits=("train",)).species
    return sorted(int(z) for z in np.unique(species) if z > 0)


def _continue_from(entry: dict, before: dict | None, config: dict) -> None:
    """Record a warm-started run as the continuation of ``before`` (the manifest entry it started from); a
    model of another task (a generation model under a modification model) is recorded as its initialisation
    only: steps and epochs are not added up."""
    entry["command"] += f" --init-from {config['init_from']}" + ("" if " --lr " in entry["command"]
                                                                 else f" --lr {config['lr']}")
    if before is None:
        return
    if before["task"] != entry["task"]:
        entry["initialized_from"] = {k: before[k] for k in ("name", "task", "steps", "epochs", "command", "sha256")}
        return
    if before.get("warm_start_from") and before["sha256"] == entry["sha256"]:
        before = before["warm_start_from"]  # publishing the same continued run again: same predecessor
    entry["warm_start_from"] = {k: before[k] for k in ("steps", "epochs", "wall_time_s", "command", "device",
                                                      "sha256", "metrics") if k in before}
    entry["steps"] += before["steps"]
    entry["epochs"] = round(entry["epochs"] + before["epochs"], 2)
    entry["wall_time_s"] += before["wall_time_s"]
    entry["command"] = f"{before['command']}, then {entry['command']}"
    entry["device"] = f"{before['device']}; continued on: {entry['device']}"


def _results(results: Path, name: str, task: str) -> dict:
    metrics = {}
    for split in ("val", "test"):
        path = results / f"{task}_{name}_{split}.json"
        if path.is_file():
            metrics[split] = json.loads(path.read_text())
    for kind in ("coverage", "reconstruction"):
        path = results / f"{kind}_{name}_test.json"
        if path.is_file():
            metrics[f"{kind}_test"] = json.loads(path.read_text())
    return metrics


def exported_run(export, run_dir: Path, path: Path, only_manifest: bool) -> tuple[dict, dict, list, dict]:
    """(inference payload, run config, log lines, last log line) of a run; the payload is exported with
    ``export(run_dir, path)`` unless ``only_manifest`` or the run has no checkpoint (then read from ``path``)."""
    import torch

    if not only_manifest and (run_dir / "checkpoint.pt").is_file():
        payload = export(run_dir, path)
    else:
        payload = torch.load(path, weights_only=True)
    config = json.loads((run_dir / "config.json").read_text())
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.is_file():  # a run resumed across sessions (or stopped between saves): the saved state counts
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        log = [entry for entry in log if entry.get("step", 0) <= state["step"]]
        validated = [entry for entry in log if "val_loss" in entry]
        last = {"step": state["step"], "elapsed": state["elapsed"],
                "val_loss": validated[-1]["val_loss"] if validated else None}
        return payload, config, log, last
    final = [entry for entry in log if entry.get("final")]
    return payload, config, log, final[-1] if final else log[-1]


def langevin_entry(name: str, run_dir: Path, file: str, out: Path, results: Path, args, previous: dict) -> dict:
    """The manifest entry of a langevin run (exported unless ``--only-manifest``); a warm-started run is the
    continuation of the current entry. The split prior is the one the run fitted (its neighbour settings
    recorded)."""
    payload, config, log, last = exported_run(export_langevin, run_dir, out / file, args.only_manifest)
    if (run_dir / "checkpoint.pt").is_file():  # a run stopped between checkpoints logged steps it did not keep
        from explorer.generators.payload import read_payload

        last = {**last, "step": read_payload(run_dir / "checkpoint.pt")["step"]}
        log = [entry for entry in log if entry["step"] <= last["step"]]
    model = payload["model"]
    sampling = json.loads(Path(args.langevin_sampling).read_text()) if args.langevin_sampling else LANGEVIN_SAMPLING
    prior, train_size = payload["prior"], 27508  # asymmetric units of the train split
    entry = {
        "name": name, "family": "langevin", "task": "generation", "file": file, "method": payload["method"],
        "sampler": "langevin", **sampling, "model": model,
        "parameters": sum(v.numel() for v in payload["state_dict"].values()),
        "data": "mp_structures + wbm_structures, split == train, <= 20 atoms, as asymmetric units "
                f"(pyxtal, 0.1 A): {train_size} structures",
        "command": (f"explorer train generation --family langevin --dim {model['hidden']} --depth {model['blocks']} "
                    f"--batch-size {config['batch_size']} --lr {config['lr']} --minutes {config['max_minutes']} "
                    f"--threads {config['threads']} --out runs/{run_dir.name}"),
        "steps": last["step"], "epochs": round(last["step"] * config["batch_size"] / train_size, 2),
        "wall_time_s": round(max(entry.get("elapsed", 0) for entry in log)),
        "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread; {args.device_note}",
        "val_loss": next((e["val_loss"] for e in reversed(log) if "val_loss" in e), None),
        "metrics": _results(results, name, "generation"),
        "sha256": file_sha256(out / file),
        "split_prior": {"neighbour_tau": prior.get("neighbour_tau"), "neighbour_weight": prior.get("neighbour_weight"),
                        "structures": train_size, "fitted": "by the training run (fit_prior)"},
    }
    if config.get("init_from"):
        _continue_from(entry, previous.get(config["init_from"]), config)
    return entry


def descriptor_entry(name: str, run_dir: Path, file: str, out: Path, results: Path, args) -> dict:
    """The manifest entry of a descriptor (StructRepDiff) run (exported unless ``--only-manifest``)."""
    from explorer.generators.descriptor.dataset import dataset_spec
    from explorer.generators.descriptor.training import export_descriptor

    payload, config, log, last = exported_run(export_descriptor, run_dir, out / file, args.only_manifest)
    dataset, model = payload["dataset"], payload["model"]
    sampling = json.loads(Path(args.descriptor_sampling).read_text()) if args.descriptor_sampling \
        else DESCRIPTOR_SAMPLING
    if dataset in DESCRIPTOR_RECONSTRUCTION:
        sampling = {**sampling, "reconstruction": {**sampling["reconstruction"], **DESCRIPTOR_RECONSTRUCTION[dataset]}}
    if dataset in DESCRIPTOR_COMPOSITION:
        sampling = {**sampling, "composition": DESCRIPTOR_COMPOSITION[dataset]}
    return {
        "name": name, "family": "descriptor", "task": "generation", "file": file, "method": payload["method"],
        "sampler": "ddpm", **sampling, "model": model, "dataset": dataset,
        "parameters": sum(v.numel() for v in payload["state_dict"].values()),
        "elements": len(payload["layout"]["elements"]), "data": DESCRIPTOR_DATA[dataset],
        "data_file": dataset_spec(dataset).file,
        "command": (f"explorer train generation --family descriptor --dataset {dataset} --dim {model['hidden']} "
                    f"--depth {model['blocks']} --batch-size {config['batch_size']} --lr {config['lr']} "
                    f"--max-steps {config['max_steps']} --threads {config['threads']} --out runs/{run_dir.name}"),
        "steps": last["step"],
        "wall_time_s": round(max(entry.get("elapsed", 0) for entry in log)),
        "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread; {args.device_note}",
        "val_loss": next((e["val_loss"] for e in reversed(log) if "val_loss" in e), None),
        "metrics": _results(results, name, "generation"),
        "sha256": file_sha256(out / file),
    }


def diffcsp_entry(name: str, run_dir: Path, file: str, out: Path, results: Path, args, previous: dict) -> dict:
    """The manifest entry of the DiffCSP peer (exported unless ``--only-manifest``); a warm-started run is the
    continuation of the current entry."""
    from explorer.generators.diffcsp.training import export_diffcsp

    payload, config, log, last = exported_run(export_diffcsp, run_dir, out / file, args.only_manifest)
    model = payload["model"]
    train_size = 27592
    entry = {
        "name": name, "family": "diffcsp", "task": "generation", "file": file, "method": payload["method"],
        "sampler": "predictor-corrector", **DIFFCSP_SAMPLING, "model": model,
        "parameters": sum(v.numel() for v in payload["state_dict"].values()),
        "peer": "DiffCSP (Jiao et al., NeurIPS 2023), CSP task: CSPNet and the joint diffusion from the registry "
                "package chemeleon-dng 0.1.5 (shipped without weights), trained here",
        "data": f"mp_structures + wbm_structures, split == train, primitive cells <= 20 atoms (Niggli, canonical "
                f"orientation): {train_size} cells",
        "command": (f"explorer train generation --family diffcsp --dim {model['hidden_dim']} --depth "
                    f"{model['num_layers']} --batch-size {config['batch_size']} --lr {config['lr']} --minutes "
                    f"{config['max_minutes']} --max-steps {config['max_steps']} --threads {config['threads']} "
                    f"--out runs/{run_dir.name}"),
        "steps": last["step"], "epochs": round(last["step"] * config["batch_size"] / train_size, 2),
        "wall_time_s": round(last.get("elapsed") or max(entry.get("elapsed", 0) for entry in log)),
        "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread; {args.device_note}",
        "val_loss": next((e["val_loss"] for e in reversed(log) if "val_loss" in e), None),
        "metrics": _results(results, name, "generation"),
        "sha256": file_sha256(out / file),
    }
    if config.get("init_from"):
        _continue_from(entry, previous.get(config["init_from"]), config)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--out", default="pretrained")
    parser.add_argument("--default", default=None)
    parser.add_argument("--only-manifest", action="store_true", help="keep the exported files, rewrite the manifest")
    parser.add_argument("--only", nargs="+", default=None, help="update only these models, keep the other entries")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                        help="run directory (under --runs) of a model, instead of the default one")
    parser.add_argument("--note", action="append", default=[], metavar="NAME=TEXT",
                        help="a remark recorded with a model (e.g. which checkpoint of the run was chosen)")
    parser.add_argument("--langevin-sampling", default=None,
                        help="JSON file with default_steps and sampler_options of the langevin model")
    parser.add_argument("--descriptor-sampling", default=None,
                        help="JSON file with default_steps and reconstruction settings of the descriptor models")
    parser.add_argument("--device-note", default="4-7 training runs and other work shared the 2 cores",
                        help="how the machine was shared during training (recorded in the manifest)")
    args = parser.parse_args()
    out, runs, results = Path(args.out), Path(args.runs), Path(args.results)
    out.mkdir(exist_ok=True)
    run_dirs = dict(item.split("=", 1) for item in args.run)
    notes = dict(item.split("=", 1) for item in args.note)
    previous, previous_default = {}, None
    if (out / "manifest.json").is_file():
        old = json.loads((out / "manifest.json").read_text())
        previous, previous_default = {e["name"]: e for e in old["models"]}, old.get("default")
    entries = []
    for name, (run, file, sampler) in MODELS.items():
        if args.only is not None and name not in args.only:
            if name in previous:
                entries.append(previous[name])
            continue
        run = run_dirs.get(name, run)
        run_dir = runs / run
        if not (run_dir / "checkpoint.pt").is_file() and not (out / file).is_file():
            continue
        if FAMILIES.get(name) == "diffcsp":
            entries.append(diffcsp_entry(name, run_dir, file, out, results, args, previous))
            if name in notes:
                entries[-1]["note"] = notes[name]
            continue
        if FAMILIES.get(name) in ("langevin", "descriptor"):
            entries.append(langevin_entry(name, run_dir, file, out, results, args, previous)
                           if FAMILIES[name] == "langevin"
                           else descriptor_entry(name, run_dir, file, out, results, args))
            if name in notes:
                entries[-1]["note"] = notes[name]
            continue
        payload, config, log, last = exported_run(export_checkpoint, run_dir, out / file, args.only_manifest)
        elapsed = max(entry.get("elapsed", 0) for entry in log)
        task = "modification" if payload["method"] in MODIFICATION_METHODS else "generation"
        metrics = _results(results, name, task)
        n_params = sum(v.numel() for v in payload["state_dict"].values())
        entries.append({
            "name": name,
            "family": "matrix",
            "task": task,
            "file": file,
            "method": payload["method"],
            "sampler": sampler,
            "model": payload["model"],
            "parameters": n_params,
            "data": "mp_structures + wbm_structures, split == train (primitive standard cells, <= 60 sites)",
            "command": (f"explorer train {task} --method {config['method']} --arch {config['model']['arch']} "
                        f"--dim {config['model'].get('dim', config['model'].get('channels'))} "
                        f"--depth {config['model'].get('depth', config['model'].get('num_res_blocks'))} "
                        f"--minutes {config['max_minutes']} --threads {config['threads']} --out runs/{run}"),
            "steps": last["step"],
            # modification: epochs of polymorph pairs (the augmented batches come on top)
            "epochs": round(last["step"] * config["batch_size"] * (1 - config.get("augment", 0.0))
                            / (33785 if task == "generation" else PAIRS_PER_EPOCH), 2),
            "wall_time_s": round(elapsed),
            "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread; {args.device_note}",
            "val_loss": last.get("val_loss"),
            "metrics": metrics,
            "sha256": file_sha256(out / file),
        })
        if config.get("warmup_steps", 500) != 500:
            entries[-1]["command"] += f" --warmup-steps {config['warmup_steps']}"
        if config.get("augment"):
            entries[-1]["command"] += f" --augment {config['augment']}"
        if config.get("init_from"):
            _continue_from(entries[-1], previous.get(config["init_from"]), config)
        if name in notes:
            entries[-1]["note"] = notes[name]
        if task == "modification":
            entries[-1]["elements"] = training_elements()
            entries[-1]["data"] = ("polymorph pairs (same cell contents) from mp_structures + wbm_structures, "
                                   "split == train")
    def best(task: str, key: str, fallback: str) -> str:
        scored = [e for e in entries if e["task"] == task and "val" in e["metrics"]]
        return max(scored, key=lambda e: e["metrics"]["val"][key])["name"] if scored else fallback

    # the default without conditions: as given, else the current manifest's (a model that needs a space group,
    # like langevin, cannot be it), else the best on val
    kept = previous_default if any(e["name"] == previous_default for e in entries) else None
    manifest = {"default": args.default or kept or best("generation", "match_rate_loose", "cfm-uniform"),
                "default_by_conditions": [n for n in DEFAULT_BY_CONDITIONS if any(e["name"] == n for e in entries)],
                "models": entries}
    if any(e["task"] == "modification" for e in entries):
        manifest["default_modification"] = best("modification", "match_rate", "mod-regression")
    default = manifest["default"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out / 'manifest.json'}: {[e['name'] for e in entries]}, default {default}")


if __name__ == "__main__":
    main()

"""Export trained runs to ``pretrained/`` (fp16 EMA weights) and (re)write ``pretrained/manifest.json``.

Usage:
    python scripts/publish_pretrained.py --runs runs --results benchmarks/results [--default NAME]

Each model name maps to a run directory (``runs/<run>``) and a sampler; metrics are read from
``<results>/generation_<name>_<split>.json`` (written by ``benchmarks/evaluate_generation.sh``) when present.
The default model is the one with the highest validation ``match_rate_loose`` unless ``--default`` is given.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from explorer.pretrained import sha256
from explorer.training import export_checkpoint

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
}
MODIFICATION_METHODS = ("regression", "palette", "cfm")


def training_elements() -> list[int]:
    """Atomic numbers present in the training split (the support of the modification models)."""
    import numpy as np

    from explorer.data import load_training_data

    species = load_training_data(splits=("train",)).species
    return sorted(int(z) for z in np.unique(species) if z > 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--out", default="pretrained")
    parser.add_argument("--default", default=None)
    parser.add_argument("--only-manifest", action="store_true", help="keep the exported files, rewrite the manifest")
    args = parser.parse_args()
    out, runs, results = Path(args.out), Path(args.runs), Path(args.results)
    out.mkdir(exist_ok=True)
    entries = []
    for name, (run, file, sampler) in MODELS.items():
        run_dir = runs / run
        if not (run_dir / "checkpoint.pt").is_file() and not (out / file).is_file():
            continue
        if not args.only_manifest and (run_dir / "checkpoint.pt").is_file():
            payload = export_checkpoint(run_dir, out / file)
        else:
            import torch

            payload = torch.load(out / file, weights_only=True)
        config = json.loads((run_dir / "config.json").read_text())
        log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        final = [entry for entry in log if entry.get("final")]
        last = final[-1] if final else log[-1]
        elapsed = max(entry.get("elapsed", 0) for entry in log)
        task = "modification" if payload["method"] in MODIFICATION_METHODS else "generation"
        metrics = {}
        for split in ("val", "test"):
            path = results / f"{task}_{name}_{split}.json"
            if path.is_file():
                metrics[split] = json.loads(path.read_text())
        n_params = sum(v.numel() for v in payload["state_dict"].values())
        entries.append({
            "name": name,
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
            "epochs": round(last["step"] * config["batch_size"] / (33785 if task == "generation" else 2478), 2),
            "wall_time_s": round(elapsed),
            "device": (f"CPU ({platform.processor() or platform.machine()}), 1 torch thread; "
                       "4-7 training runs and other work shared the 2 cores"),
            "val_loss": last.get("val_loss"),
            "metrics": metrics,
            "sha256": sha256(out / file),
        })
        if task == "modification":
            entries[-1]["elements"] = training_elements()
            entries[-1]["data"] = ("polymorph pairs (same cell contents) from mp_structures + wbm_structures, "
                                   "split == train")
    def best(task: str, key: str, fallback: str) -> str:
        scored = [e for e in entries if e["task"] == task and "val" in e["metrics"]]
        return max(scored, key=lambda e: e["metrics"]["val"][key])["name"] if scored else fallback

    manifest = {"default": args.default or best("generation", "match_rate_loose", "cfm-uniform"), "models": entries}
    if any(e["task"] == "modification" for e in entries):
        manifest["default_modification"] = best("modification", "match_rate", "mod-regression")
    default = manifest["default"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out / 'manifest.json'}: {[e['name'] for e in entries]}, default {default}")


if __name__ == "__main__":
    main()

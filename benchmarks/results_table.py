"""Render the README's results tables from the JSON files in benchmarks/results/ (numbers are never typed
by hand). Usage: python benchmarks/results_table.py"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MANIFEST = Path(__file__).parents[1] / "pretrained" / "manifest.json"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _cell(metrics: dict | None, key: str) -> str:
    if not metrics or metrics.get(key) is None:
        return "–"
    return f"{metrics[key]:.3f}"


def table(task: str, names: list[str], labels: dict[str, str], variants: dict[str, str] | None = None) -> str:
    """Rows of each model (val and test); ``variants`` {suffix: label}: extra rows from
    ``<task>_<name><suffix>_<split>.json`` of the same checkpoint (e.g. best-of-draws sampling)."""
    manifest = json.loads(MANIFEST.read_text())
    entries = {e["name"]: e for e in manifest["models"]}
    lines = ["| model | network | train steps (epochs) | split | n | match_rate | match_rate_loose | rmse | validity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        entry = entries.get(name)
        if entry is None:
            continue
        net = entry["model"]["arch"]
        for suffix, extra in {"": "", **(variants or {})}.items():
            for split in ("val", "test"):
                m = _load(f"{task}_{name}{suffix}_{split}.json")
                if m is None:
                    continue
                lines.append(f"| {labels.get(name, name)}{extra} | {net} ({entry['parameters'] / 1e6:.1f} M) | "
                             f"{entry['steps']} ({entry['epochs']}) | {split} | {m['n']} | "
                             f"{_cell(m, 'match_rate')} | {_cell(m, 'match_rate_loose')} | {_cell(m, 'rmse')} | "
                             f"{_cell(m, 'validity')} |")
    return "\n".join(lines)


def main() -> None:
    print(table("generation", ["ddpm", "ddim", "cfm-normal", "cfm-uniform", "cfm-uniform-unet1d"],
                {"ddpm": "DDPM", "ddim": "DDIM", "cfm-normal": "CFM N(0,1)", "cfm-uniform": "CFM U(0,1)",
                 "cfm-uniform-unet1d": "CFM U(0,1), UNet"}, {"_draws4": ", best of 4 draws"}))
    print()
    print(table("modification", ["mod-regression", "mod-palette", "mod-cfm", "mod-palette-cfm"],
                {"mod-regression": "Regression", "mod-palette": "Diffusion (Palette)", "mod-cfm": "CFM",
                 "mod-palette-cfm": "Palette-conditioned CFM N(0,1), from cfm-normal"},
                {"_draws4": ", best of 4 draws", "_model-relaxed": ", samples relaxed with M3GNet",
                 "_prototypes-unrelaxed": " + prototypes (unrelaxed)",
                 "_pipeline": " + prototypes, relaxed with M3GNet (`explorer modify` default)"}))
    throughput = _load("sampling_throughput.json")
    if throughput:
        print()
        print(f"Sampling throughput ({throughput['device']}, {throughput['torch_threads']} threads, batch "
              f"{throughput['batch']}, {throughput['steps']} steps, mean {throughput['mean_sites']} sites), "
              f"`{throughput['command']}`:\n")
        print("| model | structures/s | s per batch |\n|---|---|---|")
        for r in throughput["results"]:
            print(f"| {r['model']} | {r['structures_per_s']} | {r['seconds_per_batch']} |")


if __name__ == "__main__":
    main()

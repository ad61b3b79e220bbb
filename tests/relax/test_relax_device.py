"""The device path of the batched relaxer and benchmarks/device_throughput.py (run here on the CPU; on a GPU the
same code takes CUDA with --device auto)."""

import importlib.util
import json
from pathlib import Path

import pytest
from crystal_fixtures import missing_data, rock_salt_nacl

from explorer.errors import ExplorerInputError
from explorer.relax import relax

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "device_throughput.py"


def test_auto_on_a_machine_without_a_gpu_relaxes_on_the_cpu(m3gnet):
    structure = rock_salt_nacl()
    structure.perturb(0.05, seed=0)
    cpu = relax([structure], potential=m3gnet, steps=5, formation="none", batch_size=2, device="cpu")[0]
    auto = relax([structure], potential=m3gnet, steps=5, formation="none", batch_size=2, device="auto")[0]
    assert auto.energy_per_atom == pytest.approx(cpu.energy_per_atom, abs=1e-6)


def test_a_gpu_outside_the_batched_relaxer_is_refused(m3gnet, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    with pytest.raises(ExplorerInputError, match="batched relaxer only"):
        relax([rock_salt_nacl()], potential=m3gnet, steps=1, formation="none", batch_size=1, device="cuda")


def test_the_throughput_script_runs_its_sweep_and_writes_its_report(m3gnet, tmp_path):
    from explorer.config import data_dir

    if not (data_dir() / "mp_structures.csv.gz").is_file():
        pytest.skip(missing_data("mp_structures.csv.gz"))
    spec = importlib.util.spec_from_file_location("device_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "throughput.json"
    report = module.main(["--quick", "--device", "cpu", "--threads", "1", "--out", str(out)])
    assert [r["batch"] for r in report["sampling"]] == [1, 2] and report["sampling"][0]["model"] == "cfm-normal"
    assert [r["batch"] for r in report["relaxation"]] == [1, 2]
    assert all(r["structures_per_s"] > 0 for r in report["sampling"] + report["relaxation"])
    assert json.loads(out.read_text())["device"].startswith("CPU")

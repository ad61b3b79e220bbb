"""The example notebooks (generate → view → relax → hull → export) run headlessly with nbclient, with tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_example_notebook_runs(path, tmp_path, monkeypatch, tiny_data_dir):
    # the tiny data directory: the generation pipeline's prototype library builds in a second, not minutes
    monkeypatch.setenv("EXPLORER_EXAMPLE_N", "2")
    monkeypatch.setenv("EXPLORER_EXAMPLE_STEPS", "5")
    monkeypatch.setenv("EXPLORER_EXAMPLE_RELAX_STEPS", "3")
    # the M3GNet Eform model needs no elemental-reference relaxations (minutes); "none" when it is absent
    from explorer.config import models_dir
    from explorer.relax.potentials import DEFAULT_EFORM

    eform = (models_dir() / DEFAULT_EFORM / "model.json").is_file()
    monkeypatch.setenv("EXPLORER_EXAMPLE_FORMATION", "eform" if eform else "none")
    monkeypatch.setenv("EXPLORER_SESSION_DIR", str(tmp_path / "session"))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert list((tmp_path / "out").glob("*.zip")), "the notebook did not export anything"

"""Convex hull: MP reference mode (tiny CSV written here, and the shared file when present), elements mode,
errors, and the HoloViews plots."""

from __future__ import annotations

import csv
import gzip

import pytest
from crystal_fixtures import missing_data

from explorer.config import data_dir
from explorer.errors import ExplorerInputError
from explorer.relax import hull_analysis, hull_figure, reference_entries, save_hull, save_plot
from explorer.relax.hull import MP_FORMATION_ENERGIES

# A-B system for hand-checked numbers: TaB and TaB2 on the hull, Ta2B 0.05 eV/atom above it,
# plus a W-B entry (outside Ta-B) and a row without a composition (skipped).
TINY_MP = [
    ("mp-1", "TaB", -0.80),
    ("mp-2", "TaB2", -0.65),
    ("mp-3", "Ta2B", -0.35),
    ("mp-4", "WB", -0.37),
    ("mp-5", "", -0.10),
]


@pytest.fixture
def tiny_data(tmp_path):
    with gzip.open(tmp_path / MP_FORMATION_ENERGIES, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task_id", "composition", "formation_energy_per_atom"])
        writer.writerows(TINY_MP)
    return tmp_path


def test_mp_mode_by_hand(tiny_data):
    analysis = hull_analysis([("below", "TaB", -0.9), ("above", "Ta3B", -0.1)], "Ta-B", "mp", data=tiny_data)
    by_label = {row.label: row for row in analysis.references}
    assert set(by_label) == {"Ta (element)", "B (element)", "mp-1", "mp-2", "mp-3"}
    for label in ("Ta (element)", "B (element)", "mp-1", "mp-2"):
        assert by_label[label].e_above_hull == pytest.approx(0.0, abs=1e-9)  # MP hull entries at 0
    # Ta2B (x_B = 1/3) against the Ta-TaB tie line: -0.8 * (2/3) = -0.5333 -> 0.1833 above
    assert by_label["mp-3"].e_above_hull == pytest.approx(-0.35 + 0.8 * 2 / 3, abs=1e-6)
    below, above = analysis.candidates
    assert below.e_above_hull == pytest.approx(-0.1, abs=1e-9)  # 0.1 eV/atom below the MP TaB
    assert below.decomposition == {"TaB": pytest.approx(1.0)}
    # Ta3B (x_B = 1/4) on the Ta-TaB line: -0.8 * 0.5 = -0.4; candidate at -0.1 -> 0.3 above, half Ta half TaB
    assert above.e_above_hull == pytest.approx(0.3, abs=1e-6)
    assert above.decomposition == {"Ta": pytest.approx(0.5), "TaB": pytest.approx(0.5)}
    assert analysis.table()[1] == {"label": "above", "formula": "Ta3B", "formation_energy_per_atom": -0.1,
                                   "e_above_hull": 0.3, "decomposition": "0.5 Ta + 0.5 TaB"}


@pytest.mark.skipif(not (data_dir() / MP_FORMATION_ENERGIES).is_file(), reason=missing_data(MP_FORMATION_ENERGIES))
def test_mp_mode_shared_data():
    analysis = hull_analysis([], "Ta-W-B", "mp")
    stable = {entry.attribute for entry in analysis.phase_diagram.stable_entries}
    assert {"mp-1108", "mp-1097", "mp-7832"} <= stable  # TaB2, TaB, WB
    for row in analysis.references:
        assert row.e_above_hull >= -1e-9
        assert (row.e_above_hull == pytest.approx(0.0, abs=1e-9)) == (row.label in stable)


def test_elements_mode_needs_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "nothing-here"))
    analysis = hull_analysis([{"label": "x", "composition": "TaWB2", "formation_energy_per_atom": -0.4}],
                             "Ta-W-B", "elements")
    assert len(analysis.references) == 3
    row = analysis.candidates[0]
    assert row.e_above_hull == pytest.approx(-0.4)  # the elemental hull is the zero plane
    assert row.decomposition == {"Ta": pytest.approx(0.25), "W": pytest.approx(0.25), "B": pytest.approx(0.5)}
    with pytest.raises(ExplorerInputError, match="not found"):
        hull_analysis([], "Ta-W-B", "mp")


def test_hull_errors(tiny_data):
    with pytest.raises(ExplorerInputError, match="not in the chemical system"):
        hull_analysis([("nacl", "NaCl", -2.0)], "Ta-B", "mp", data=tiny_data)
    with pytest.raises(ExplorerInputError, match="finite formation energy"):
        hull_analysis([("nan", "TaB", float("nan"))], "Ta-B", "elements")
    with pytest.raises(ExplorerInputError, match="no mp_structures.csv.gz"):
        reference_entries("Ta-B", "ml", data=tiny_data)  # 'ml' needs the structure files
    with pytest.raises(ExplorerInputError, match="reference must be"):
        reference_entries("Ta-B", "dft")


@pytest.mark.parametrize("chemsys", ["Ta-B", "Ta-W-B", "Ta-W-B-C"])
def test_plots(tiny_data, tmp_path, chemsys):
    import holoviews as hv

    analysis = hull_analysis([("cand", "TaB", -0.9)], chemsys, "elements" if "W" in chemsys else "mp",
                             data=tiny_data)
    plot = hull_figure(analysis)
    assert isinstance(plot, hv.core.Dimensioned)
    path = save_plot(plot, tmp_path / "hull.html")
    text = path.read_text()
    assert "Bokeh" in text and "cand" in text
    paths = save_hull(analysis, tmp_path / "out")
    with open(paths["csv"]) as handle:
        assert next(csv.DictReader(handle))["label"] == "cand"

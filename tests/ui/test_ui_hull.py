"""The hull card offers the same references as `explorer hull`: MP, the elements, AFLOW and a user's CSV."""

from explorer.ui.hull import HullPlot


def test_an_uploaded_csv_becomes_the_hulls_references(tmp_path):
    plot = HullPlot(chemsys="Cl-Na", reference="elements",
                    points=[{"index": 0, "label": "c0", "formula": "NaCl", "energy": -1.0, "relaxed": True}])
    assert plot.rows[0]["e_above_hull"] == -1.0  # elements only: the candidate is the hull
    plot._reference_file.filename = "mine.csv"
    plot._reference_file.value = b"composition,formation_energy_per_atom\nNaCl,-2.0\n"
    assert plot.reference.endswith(".csv") and plot._reference_select.value == plot.reference
    assert abs(plot.rows[0]["e_above_hull"] - 1.0) < 1e-9  # 1 eV/atom above the uploaded NaCl
    assert "your file mine.csv" in plot._note.object


def test_aflow_offline_is_a_message_not_a_traceback(monkeypatch):
    from urllib.error import URLError

    from explorer.relax import external_references

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(external_references, "urlopen", offline)
    plot = HullPlot(chemsys="Cl-Na", reference="elements")
    plot._reference_select.value = "aflow"
    assert plot.reference == "aflow"
    assert "needs the network" in plot._note.object and "--reference mp" in plot.message

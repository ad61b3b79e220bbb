"""Tiny crystals built in code and a tiny structure CSV.gz writer, shared by the tests."""

from __future__ import annotations

import csv
import gzip
from contextlib import contextmanager
from pathlib import Path

from pymatgen.core import Lattice, Structure

CSV_COLUMNS = ["material_id", "formula", "nsites", "spacegroup", "formation_energy_per_atom", "split", "cif"]


@contextmanager
def one_torch_thread():
    """Crystal-sized graphs and few-atom samples run fastest on one torch thread (the CLI's default); more
    only fight over busy cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rock_salt_nacl() -> Structure:
    """Conventional rock-salt NaCl (8 atoms, Fm-3m 225)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def diamond_si() -> Structure:
    """Conventional diamond Si (8 atoms, Fd-3m 227)."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


def cubic_srtio3() -> Structure:
    """Cubic perovskite SrTiO3 (5 atoms, Pm-3m 221)."""
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def cesium_chloride() -> Structure:
    """CsCl (2 atoms, Pm-3m 221)."""
    return Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def fcc_copper() -> Structure:
    """Conventional fcc Cu (4 atoms; 1 in the primitive cell)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])


def tiny_rows() -> list[dict]:
    """Seven rows: five good structures, one malformed CIF, one NaN formation energy."""
    entries = [
        ("tiny-1", rock_salt_nacl(), 225, "-2.10", "train"),
        ("tiny-2", diamond_si(), 227, "0.0", "train"),
        ("tiny-3", cesium_chloride(), 221, "-2.20", "train"),
        ("tiny-4", cubic_srtio3(), 221, "-3.50", "val"),
        ("tiny-5", fcc_copper(), 225, "0.0", "test"),
    ]
    rows = []
    for material_id, structure, spacegroup, energy, split in entries:
        rows.append({"material_id": material_id, "formula": structure.composition.reduced_formula,
                     "nsites": len(structure), "spacegroup": spacegroup, "formation_energy_per_atom": energy,
                     "split": split, "cif": structure.to(fmt="cif")})
    rows.append({"material_id": "tiny-bad-cif", "formula": "X", "nsites": 1, "spacegroup": 1,
                 "formation_energy_per_atom": "-1.0", "split": "train", "cif": "data_broken\nthis is not a cif\n"})
    nan_row = dict(rows[0], material_id="tiny-nan", formation_energy_per_atom="nan")
    rows.append(nan_row)
    return rows


def write_csv_gz(path: Path, rows: list[dict], columns=CSV_COLUMNS) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def potassium_bromide() -> Structure:
    """Rock-salt KBr (8 atoms, Fm-3m 225)."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.6), ["K", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def write_data_dir(folder: Path) -> Path:
    """A tiny data directory with both structure files: ``mp_structures.csv.gz`` = :func:`tiny_rows` and
    ``wbm_structures.csv.gz`` = one rock-salt KBr (train split)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv_gz(folder / "mp_structures.csv.gz", tiny_rows())
    kbr = potassium_bromide()
    write_csv_gz(folder / "wbm_structures.csv.gz",
                 [{"material_id": "wbm-kbr", "formula": "KBr", "nsites": 8, "formation_energy_per_atom": "-1.9",
                   "split": "train", "cif": kbr.to(fmt="cif")}])
    return folder


def write_polymorph_pairs_csv(path: Path) -> Path:
    """A structure CSV.gz (test split) with one polymorph pair: rock-salt NaCl (-1.5 eV/atom) -> CsCl-type NaCl
    (-1.9 eV/atom, Pm-3m), plus CsCl itself (no pair: one structure of its formula)."""
    cscl_type_nacl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    structures = [(rock_salt_nacl(), "-1.5"), (cscl_type_nacl, "-1.9"), (cesium_chloride(), "-2")]
    rows = [{"material_id": f"p{i}", "formula": s.composition.reduced_formula, "formation_energy_per_atom": e,
             "split": "test", "cif": s.to(fmt="cif")} for i, (s, e) in enumerate(structures)]
    return write_csv_gz(path, rows)



def nacl_candidates(n: int = 3, energy: float = -0.5) -> list:
    """``n`` Candidates of rock-salt NaCl asked for in Fm-3m at ``energy`` eV/atom (for the app's tests)."""
    from explorer.candidates import make_candidate

    return [make_candidate(rock_salt_nacl(), 225, energy, index=i) for i in range(n)]


def render(viewable):
    """Build a Panel object's Bokeh model as a page would (raises on any layout or parameter error)."""
    import panel as pn

    return pn.panel(viewable).get_root()


def copy_shipped_model(folder: Path, name: str = "cfm-uniform"):
    """The manifest and one shipped checkpoint copied into ``folder`` (a pretrained directory of its own);
    returns the model's registry entry."""
    import shutil

    from explorer.config import PRETRAINED_DIR
    from explorer.generators import model_info

    info = model_info(name)
    shutil.copyfile(PRETRAINED_DIR / "manifest.json", folder / "manifest.json")
    shutil.copyfile(PRETRAINED_DIR / info.file, folder / info.file)
    return info


def tamper(path: Path) -> None:
    """Flip 16 bytes in the middle of a file (a corrupted download)."""
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    path.write_bytes(bytes(raw))


def missing_weights(name: str = "M3GNet-MP-2021.2.8-PES") -> str:
    """Why a test that needs matgl weights is skipped: which folder lacks them and how to provide it."""
    from explorer.config import models_dir

    return (f"{name} weights not found in {models_dir() / name} (copy the matgl model folder there, or set "
            "EXPLORER_MODELS_DIR to a folder holding it)")


def missing_data(name: str) -> str:
    """Why a test that needs a third-party data file is skipped: where it was looked for."""
    from explorer.config import data_dir

    return f"{name} not found in {data_dir()} (set EXPLORER_DATA_DIR to the folder holding it, or --data-dir)"


# a langevin score network small enough for tests (explorer.generators.langevin.model.ScoreNetwork)
TINY_SCORE_NETWORK = {"hidden": 16, "int_emb": 8, "basis_emb": 4, "out_emb": 16, "blocks": 1, "num_spherical": 3,
                      "num_radial": 3, "cutoff": 4.0, "max_neighbors": 12}

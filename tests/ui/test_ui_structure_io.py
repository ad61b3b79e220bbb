"""Export (CIF / POSCAR / extxyz, single file or zip, through Structure.to) and upload parsing."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest
from pymatgen.core import Lattice, Structure

from explorer.errors import ExplorerInputError
from explorer.structure_io import EXPORT_FORMATS, export_structures, read_structure_bytes, structure_text


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def tawb() -> Structure:
    return Structure(Lattice.hexagonal(3.1, 3.3), ["Ta", "W", "B", "B"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])


def parse(text: str, fmt: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CIF reader: "fractional coordinates rounded to ideal values"
        return Structure.from_str(text, fmt=fmt)


@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_structure_text_round_trips(fmt):
    structure = tawb()
    back = parse(structure_text(structure, fmt), fmt)
    assert back.composition == structure.composition
    assert back.lattice.abc == pytest.approx(structure.lattice.abc, abs=1e-4)
    assert structure.matches(back)


def test_extxyz_goes_through_structure_to():
    text = tawb().to(fmt="extxyz")  # registered by explorer.structure_io
    assert text.splitlines()[0].strip() == "4"
    assert 'Lattice="' in text.splitlines()[1]


def test_single_structure_is_a_plain_file():
    name, content = export_structures([nacl()], "poscar", names=["rock salt"])
    assert name == "rock_salt.vasp"
    assert parse(content.decode(), "poscar").composition.reduced_formula == "NaCl"


@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_several_structures_are_a_zip_that_parses_back(fmt):
    structures = [nacl(), tawb(), tawb()]
    name, content = export_structures(structures, fmt, names=["a", "b", "b"])
    assert name == f"candidates_{fmt}.zip"
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        names = bundle.namelist()
        assert len(names) == 3 and len(set(names)) == 3  # the repeated name got a suffix
        parsed = [parse(bundle.read(n).decode(), fmt) for n in names]
    assert [p.composition for p in parsed] == [s.composition for s in structures]


def test_export_errors():
    with pytest.raises(ExplorerInputError, match="nothing to export"):
        export_structures([], "cif")
    with pytest.raises(ExplorerInputError, match="unknown export format"):
        export_structures([nacl()], "pdb")


@pytest.mark.parametrize("fmt, filename", [("cif", "x.cif"), ("poscar", "POSCAR"), ("poscar", "x.vasp"),
                                           ("extxyz", "x.extxyz")])
def test_upload_formats(fmt, filename):
    structure = read_structure_bytes(structure_text(nacl(), fmt).encode(), filename)
    assert structure.composition.reduced_formula == "NaCl"
    assert len(structure) == 8


@pytest.mark.parametrize("content, filename, message", [
    (b"data_broken\n_cell_length_a 3.0\n_cell_length_b oops\nloop_\n_atom_site_label\nX1\n", "bad.cif",
     "malformed CIF"),
    (b"", "empty.cif", "empty"),
    (b"\x00\x01\x02 not a structure at all", "mystery.bin", "cannot read"),
    (b"1\nno lattice here\nXx 0 0 0\n", "bad.extxyz", "extended XYZ"),
])
def test_upload_errors_are_one_line(content, filename, message):
    with pytest.raises(ExplorerInputError, match=message) as info:
        read_structure_bytes(content, filename)
    assert "\n" not in str(info.value)

"""Structure files in and out: the one structure reader (files, uploaded content, CIF text; one-line
:class:`ExplorerInputError` messages), and exporting candidates as CIF, POSCAR or extended XYZ — one file, or a zip
of several — through pymatgen's ``Structure.to(fmt=...)``.

Reading: :func:`read_structure` (a file), :func:`read_structure_bytes` (uploaded content and its file name) and
:func:`parse_cif` (CIF text) all go through one parser, so the same input gives the same structure and the same
error everywhere; :func:`as_structure` also takes Structures and ASE Atoms (the relaxation inputs).

pymatgen has no string writer for extended XYZ, so this module registers one (``fmt="extxyz"``, through ASE)
in pymatgen's structure-format registry when it is imported; ``Structure.from_str(text, fmt="extxyz")`` then
reads it back.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

from .errors import ExplorerInputError

EXPORT_FORMATS = {"cif": ".cif", "poscar": ".vasp", "extxyz": ".extxyz"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def _extxyz_write_str(structure, **kwargs) -> str:
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    buffer = io.StringIO()
    write(buffer, AseAtomsAdaptor.get_atoms(structure), format="extxyz")
    return buffer.getvalue()


def _extxyz_read_str(text: str, **kwargs):
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(read(io.StringIO(text), format="extxyz"))


def _register_extxyz() -> bool:
    """Make ``Structure.to(fmt="extxyz")`` / ``Structure.from_str(..., fmt="extxyz")`` work (pymatgen's registry)."""
    try:
        from pymatgen.io.registry import StructureFormat, get_structure_format, register_structure_format
    except ImportError:  # an older pymatgen without the format registry
        return False
    try:
        get_structure_format(name="extxyz")
        return True
    except ValueError:
        pass
    register_structure_format(StructureFormat(name="extxyz", patterns=("*.extxyz",), read_str=_extxyz_read_str,
                                              write_str=_extxyz_write_str))
    return True


_HAS_REGISTRY = _register_extxyz()


def check_format(fmt: str) -> str:
    fmt = str(fmt).lower()
    if fmt not in EXPORT_FORMATS:
        raise ExplorerInputError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    return fmt


def structure_text(structure, fmt: str = "cif") -> str:
    """The structure as CIF, POSCAR or extended-XYZ text (``Structure.to(fmt=...)``), every atom wrapped into the
    cell (fractional coordinates in [0, 1), in every format alike)."""
    from pymatgen.core import Structure

    fmt = check_format(fmt)
    structure = Structure.from_sites(structure, to_unit_cell=True)
    if fmt == "extxyz" and not _HAS_REGISTRY:
        return _extxyz_write_str(structure)
    return structure.to(fmt=fmt)


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return name or "structure"


def export_structures(structures, fmt: str = "cif", names=None, archive: bool | None = None) -> tuple[str, bytes]:
    """``(file name, content)`` of ``structures`` in ``fmt``: one plain file for a single structure (unless
    ``archive=True``), else a zip with one file per structure. ``names``: file stems (default ``000_TaWB6``...)."""
    fmt = check_format(fmt)
    structures = list(structures)
    if not structures:
        raise ExplorerInputError("nothing to export: no structures selected")
    if names is None:
        names = [f"{i:03d}_{s.composition.reduced_formula}" for i, s in enumerate(structures)]
    names = [_safe_name(n) for n in names]
    if len(names) != len(structures):
        raise ExplorerInputError("export: one name per structure is needed")
    suffix = EXPORT_FORMATS[fmt]
    archive = len(structures) > 1 if archive is None else archive
    if not archive:
        return names[0] + suffix, structure_text(structures[0], fmt).encode()
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, structure in zip(names, structures):
            filename, k = name + suffix, 1
            while filename in used:
                filename, k = f"{name}_{k}{suffix}", k + 1
            used.add(filename)
            bundle.writestr(filename, structure_text(structure, fmt))
    return f"candidates_{fmt}.zip", buffer.getvalue()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parse_cif(text: str):
    """pymatgen Structure from CIF text, with a one-line error for malformed input."""
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:
            raise ExplorerInputError(f"malformed CIF: {_first_line(exc)}") from None
    if len(structure) == 0:
        raise ExplorerInputError("malformed CIF: no atoms")
    return structure


def _parse_structure(content: bytes, name: str, path: Path | None = None):
    """The structure parser behind every reader. ``name`` (a file name) picks the format: extended XYZ for
    ``.xyz``/``.extxyz``; CIF for ``.cif`` or text that looks like CIF; else any format pymatgen reads by file
    name (POSCAR/CONTCAR/.vasp, ...), then POSCAR whatever the name. ``path``: the file itself when there is one
    (else a temporary copy is written for pymatgen). Errors are one-line :class:`ExplorerInputError`."""
    text = content.decode(errors="replace")
    if name.lower().endswith((".xyz", ".extxyz")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                structure = _extxyz_read_str(text)
            except Exception as exc:
                raise ExplorerInputError(f"malformed extended XYZ: {_first_line(exc)}") from None
    elif name.lower().endswith(".cif") or "_cell_length_a" in text:
        structure = parse_cif(text)
    elif path is None:
        with tempfile.TemporaryDirectory(prefix="explorer-structure-") as tmp:
            copy = Path(tmp) / _safe_name(name)
            copy.write_bytes(content)
            structure = _from_file(copy, text, name)
    else:
        structure = _from_file(path, text, name)
    if len(structure) == 0:
        raise ExplorerInputError(f"{name}: no atoms")
    return structure


def _from_file(path: Path, text: str, name: str):
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Structure.from_file(path)
        except Exception as exc:
            reason = _first_line(exc)
        try:
            return Structure.from_str(text, fmt="poscar")
        except Exception:
            raise ExplorerInputError(f"cannot read {name}: {reason}") from None


def read_structure(path: str | os.PathLike):
    """pymatgen Structure from a CIF, POSCAR/CONTCAR/.vasp, extended XYZ or any file pymatgen reads, with
    one-line :class:`ExplorerInputError` messages."""
    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"file not found: {path}")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ExplorerInputError(f"cannot read {path}: {_first_line(exc)}") from None
    return _parse_structure(content, path.name, path)


def read_structure_bytes(content: bytes, filename: str = "structure.cif"):
    """A pymatgen Structure from uploaded file content (CIF, POSCAR/CONTCAR/.vasp, extxyz or any format
    pymatgen reads by file name), with a one-line :class:`ExplorerInputError` when it cannot be read or is
    not a usable crystal (disordered, degenerate cell). At most 5 MiB."""
    if content is None or len(content) == 0:
        raise ExplorerInputError("the uploaded file is empty")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ExplorerInputError(f"the uploaded file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    name = _safe_name(Path(str(filename or "structure")).name)
    structure = _parse_structure(content, name)
    if not structure.is_ordered:
        raise ExplorerInputError(f"{name}: disordered structure (partial occupancies) is not supported")
    if not structure.lattice.volume > 1e-3:
        raise ExplorerInputError(f"{name}: degenerate cell")
    return structure


def as_structure(item):
    """pymatgen Structure from a Structure (a copy), ASE Atoms, CIF text or a structure file path."""
    from pymatgen.core import Structure

    if isinstance(item, Structure):
        return item.copy()
    if type(item).__name__ == "Atoms":
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(item)
    if isinstance(item, str) and "\n" in item:
        return parse_cif(item)
    return read_structure(item)


def write_structures(structures, out: str | os.PathLike, fmt: str = "cif", names=None) -> list[Path]:
    """Write one file per structure into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    structures = list(structures)
    names = names or [f"{i:03d}_{s.composition.reduced_formula}" for i, s in enumerate(structures)]
    paths = []
    for name, structure in zip(names, structures):
        path = out / (_safe_name(name) + EXPORT_FORMATS[check_format(fmt)])
        path.write_text(structure_text(structure, fmt))
        paths.append(path)
    return paths


__all__ = ["EXPORT_FORMATS", "as_structure", "export_structures", "parse_cif", "read_structure", "read_structure_bytes",
           "structure_text", "write_structures"]

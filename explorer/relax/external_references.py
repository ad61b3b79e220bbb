"""Hull references beyond the shipped Materials Project snapshot.

* ``"aflow"``: the entries of the chemical system in AFLOW, fetched from its public search API (AFLUX,
  https://aflow.org/API/aflux/) — ``compound``, ``prototype``, ``enthalpy_formation_atom`` (eV/atom) and ``auid``
  of every entry whose species are a subset of the system with at least two of them (one AFLUX summons per
  subset: ``species(A,B),nspecies(2),...``). The answer is cached per system under the cache directory
  (``aflow/<system>.json``), so a system once fetched works offline; offline without a cache, one line says that
  it needs the network and which references work offline.
* a file: a user's CSV(.gz) with a composition column (``composition`` or ``formula``) and
  ``formation_energy_per_atom`` (eV/atom); optional ``id``/``label`` names the entry. Rows with elements outside
  the system are left out.
"""

from __future__ import annotations

import json
import math
import os
from itertools import combinations
from pathlib import Path
from urllib.error import URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

from ..errors import ExplorerInputError

AFLUX_URL = "https://aflow.org/API/aflux/v1.0/"
AFLUX_FIELDS = ("compound", "prototype", "enthalpy_formation_atom", "auid")
TIMEOUT_S = 60
OFFLINE_HINT = ("offline, use --reference mp (the Materials Project snapshot in the data directory), elements, or "
                "a CSV file of composition,formation_energy_per_atom")


def aflux_summonses(elements) -> list[str]:
    """One AFLUX summons per subset of ``elements`` with at least two members: its entries, with the fields of
    :data:`AFLUX_FIELDS`, all pages."""
    out = []
    for size in range(2, len(elements) + 1):
        for subset in combinations(sorted(elements), size):
            out.append(f"species({','.join(subset)}),nspecies({size}),enthalpy_formation_atom(*),prototype,"
                       f"compound,auid,$paging(0)")
    return out


def _cache_path(elements) -> Path:
    from ..config import cache_dir

    return cache_dir() / "aflow" / f"{'-'.join(sorted(elements))}.json"


def _default_fetch(url: str) -> bytes:
    request = Request(url, headers={"User-Agent": "crystal-explorer (hull references)", "Accept": "application/json"})
    with urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (https only, fixed host)
        return response.read()


def aflow_rows(elements, fetch=None, refresh: bool = False) -> list[dict]:
    """AFLOW's entries of the system of ``elements`` (cached on disk). ``fetch(url) -> bytes`` does the HTTP GET
    (default: urllib); ``refresh`` asks AFLOW again although a cache exists."""
    from ..fileio import atomic_write_text

    path = _cache_path(elements)
    if path.is_file() and not refresh:
        try:
            return json.loads(path.read_text())["entries"]
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache is fetched again
    fetch = fetch or _default_fetch
    rows = []
    for summons in aflux_summonses(elements):
        url = AFLUX_URL + "?" + quote(summons, safe="(),:*$!'")
        try:
            payload = json.loads(fetch(url))
        except (URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ExplorerInputError(f"--reference aflow needs the network to reach aflow.org ({reason}); "
                                     f"{OFFLINE_HINT}") from None
        except ValueError:
            raise ExplorerInputError("aflow.org answered with something that is not JSON; try again later, or "
                                     f"{OFFLINE_HINT}") from None
        if isinstance(payload, dict):  # AFLUX answers a single entry as an object
            payload = list(payload.values()) if all(isinstance(v, dict) for v in payload.values()) else [payload]
        for item in payload if isinstance(payload, list) else []:
            row = _aflow_row(item)
            if row is not None:
                rows.append(row)
    atomic_write_text(path, json.dumps({"source": AFLUX_URL, "elements": sorted(elements), "entries": rows}))
    return rows


def _aflow_row(item) -> dict | None:
    if not isinstance(item, dict):
        return None
    try:
        energy = float(item.get("enthalpy_formation_atom"))
    except (TypeError, ValueError):
        return None
    compound = item.get("compound")
    if not compound or not math.isfinite(energy):
        return None
    return {"compound": str(compound), "prototype": str(item.get("prototype") or ""),
            "enthalpy_formation_atom": energy, "auid": str(item.get("auid") or "")}


def aflow_entries(elements, fetch=None) -> list:
    """pymatgen ``PDEntry`` objects of AFLOW's entries of the system (energy = formation enthalpy x atoms)."""
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    entries = []
    for row in aflow_rows(elements, fetch):
        try:
            composition = Composition(row["compound"])
        except ValueError:
            continue
        if not {e.symbol for e in composition.elements} <= set(elements):
            continue
        label = f"AFLOW {row['prototype']} {row['auid']}".strip()
        entries.append(PDEntry(composition, row["enthalpy_formation_atom"] * composition.num_atoms, attribute=label))
    return entries


def file_entries(path: str | os.PathLike, elements) -> list:
    """pymatgen ``PDEntry`` objects of a user's CSV(.gz) (see the module docstring), those within the system."""
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    from ..data import read_rows

    path = Path(path)
    if not path.is_file():
        raise ExplorerInputError(f"reference file not found: {path}")
    rows = read_rows(path, column=None)
    columns = set(rows[0]) if rows else set()
    formula_column = "composition" if "composition" in columns else "formula" if "formula" in columns else None
    if formula_column is None or "formation_energy_per_atom" not in columns:
        raise ExplorerInputError(f"{path.name} needs a 'composition' (or 'formula') and a "
                                 "'formation_energy_per_atom' column")
    entries = []
    for number, row in enumerate(rows, 2):
        try:
            composition = Composition(row[formula_column])
            energy = float(row["formation_energy_per_atom"])
        except (ValueError, TypeError):
            raise ExplorerInputError(f"{path.name} line {number}: cannot read {row[formula_column]!r} / "
                                     f"{row['formation_energy_per_atom']!r}") from None
        if not math.isfinite(energy) or not {e.symbol for e in composition.elements} <= set(elements):
            continue
        if len(composition.elements) < 2:
            continue  # the elements are the zero-energy references
        label = row.get("id") or row.get("label") or f"{path.name}:{number}"
        entries.append(PDEntry(composition, energy * composition.num_atoms, attribute=label))
    return entries


__all__ = ["AFLUX_URL", "aflow_entries", "aflow_rows", "aflux_summonses", "file_entries"]

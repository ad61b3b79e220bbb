"""Regenerate ``explorer/resources/elemental_properties.json`` from the mendeleev package.

The 22 elemental properties the models are conditioned on (paper: "22 chemical features ... calculated
using the Mendeleev package"). Missing values are replaced by the mean over Z = 1..103, and every column
is standardised (zero mean, unit variance) so the table can be fed to a network as is.

Run: ``python scripts/make_element_table.py`` (needs ``pip install mendeleev``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mendeleev.fetch import fetch_table

# (column in mendeleev's elements table, unit) -- the 22 properties, in model order.
PROPERTIES = [
    ("atomic_number", ""),
    ("period", ""),
    ("group_id", ""),
    ("atomic_weight", "u"),
    ("atomic_radius", "pm"),
    ("covalent_radius_pyykko", "pm"),
    ("vdw_radius", "pm"),
    ("metallic_radius", "pm"),
    ("en_pauling", ""),
    ("electron_affinity", "eV"),
    ("ionization_energy_1", "eV"),
    ("dipole_polarizability", "bohr^3"),
    ("fusion_heat", "kJ/mol"),
    ("evaporation_heat", "kJ/mol"),
    ("density", "g/cm^3"),
    ("pettifor_number", ""),
    ("heat_of_formation", "kJ/mol"),
    ("mendeleev_number", ""),
    ("block_index", "s=0,p=1,d=2,f=3"),
    ("n_valence", ""),
    ("n_unpaired", ""),
    ("thermal_conductivity", "W/(m K)"),
]


def main() -> None:
    table = fetch_table("elements").set_index("atomic_number", drop=False).loc[1:103]
    ionization = fetch_table("ionizationenergies")
    neutral = ionization[ionization["ion_charge"] == 0].drop_duplicates("atomic_number")
    first = neutral.set_index("atomic_number")["ionization_energy"]
    table["ionization_energy_1"] = first.reindex(table.index)
    table["block_index"] = table["block"].map({"s": 0, "p": 1, "d": 2, "f": 3})
    from mendeleev import element

    valence, unpaired = [], []
    for z in table.index:
        el = element(int(z))
        valence.append(el.nvalence())
        unpaired.append(el.ec.unpaired_electrons())
    table["n_valence"] = valence
    table["n_unpaired"] = unpaired

    columns, raw = [], {}
    for name, unit in PROPERTIES:
        values = [float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else None
                  for v in table[name].tolist()]
        known = [v for v in values if v is not None]
        mean = sum(known) / len(known)
        filled = [mean if v is None else v for v in values]
        std = (sum((v - mean) ** 2 for v in filled) / len(filled)) ** 0.5 or 1.0
        raw[name] = [round((v - mean) / std, 6) for v in filled]
        columns.append({"name": name, "unit": unit, "mean": mean, "std": std,
                        "missing": len(values) - len(known)})
    out = {
        "source": "mendeleev " + __import__("mendeleev").__version__,
        "columns": columns,
        "symbols": table["symbol"].tolist(),
        "values": [[raw[name][i] for name, _ in PROPERTIES] for i in range(len(table))],
    }
    path = Path(__file__).resolve().parents[1] / "explorer" / "resources" / "elemental_properties.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path} ({len(out['symbols'])} elements x {len(PROPERTIES)} properties)")


if __name__ == "__main__":
    main()

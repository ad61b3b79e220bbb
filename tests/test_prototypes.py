"""The prototype library: stoichiometry patterns, element substitution, ranking, volume and de-duplication."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure

from explorer.errors import ExplorerInputError
from explorer.prototypes import (
    PrototypeLibrary,
    best_substitution,
    load_prototype_library,
    prototype_library_available,
    prototype_library_ready,
    stoichiometry_pattern,
)


def test_stoichiometry_pattern_ignores_which_elements():
    assert stoichiometry_pattern([11, 17, 0, 0]) == (1, 1)
    assert stoichiometry_pattern([8, 8, 8, 22, 38]) == (1, 1, 3)


def test_best_substitution_keeps_counts_and_prefers_similar_elements():
    distance, mapping = best_substitution([55, 17], [11, 17])  # CsCl -> NaCl: Cs -> Na, Cl stays
    assert mapping == {55: 11, 17: 17} and distance > 0
    _, mapping = best_substitution([38, 22, 8, 8, 8], [56, 40, 16, 16, 16])  # SrTiO3 -> BaZrS3
    assert mapping == {38: 56, 22: 40, 8: 16}
    with pytest.raises(ExplorerInputError, match="stoichiometry"):
        best_substitution([11, 17], [11, 17, 17])


def test_library_substitutes_a_known_prototype_of_the_space_group(tiny_data_dir):
    assert prototype_library_available() and not prototype_library_ready()  # nothing encoded yet
    library = load_prototype_library()
    assert prototype_library_ready()
    assert load_prototype_library() is library  # built once
    nacl = [11, 17]
    found = library.query(nacl, 221, k=3, volume_per_atom=25.0)
    assert len(found) == 1 and found[0].source_formula == "CsCl" and found[0].substitution == {"Cs": "Na", "Cl": "Cl"}
    structure = found[0].structure
    assert structure.composition == Composition("NaCl") and structure.volume == pytest.approx(50.0)
    assert structure.get_space_group_info()[1] == 221
    # rock salt: the NaCl template itself comes first unless the formula's own polymorphs are excluded
    assert library.query(nacl, 225)[0].source_formula == "NaCl"
    other = library.query(nacl, 225, other_formulas_only=True)
    assert [p.source_formula for p in other] == ["KBr"] and other[0].ground_state
    assert library.query(nacl, 62) == [] and library.count(nacl, 221) == 1


def test_library_keeps_distinct_structures_once():
    from explorer.data import ProcessedSet
    from explorer.representation import encode

    cells = [Structure(Lattice.cubic(a), [element, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
             for a, element in ((4.1, "Cs"), (3.9, "Tl"))]
    crystals = [encode(c) for c in cells]
    species = np.zeros((2, 60), np.uint8)
    species[:, :2] = [c.atomic_numbers for c in crystals]
    data = ProcessedSet(np.stack([c.matrix for c in crystals]), species, np.array([2, 2], np.int16),
                        np.array([221, 221], np.int16), np.array([-2.0, -1.0], np.float32),
                        np.array(["train"] * 2), np.array(["cs", "tl"]))
    found = PrototypeLibrary(data).query([37, 35], 221, k=5)  # RbBr in the CsCl structure, once
    assert len(found) == 1 and found[0].rank == 0
    assert StructureMatcher().fit(found[0].structure, Structure(Lattice.cubic(4.0), ["Rb", "Br"],
                                                                 [[0, 0, 0], [0.5, 0.5, 0.5]]))


def test_library_rejects_bad_input(tiny_data_dir):
    library = load_prototype_library()
    with pytest.raises(ExplorerInputError, match="no atoms"):
        library.query([], 221)
    with pytest.raises(ExplorerInputError, match="volume"):
        library.query([11, 17], 221, volume_per_atom=float("nan"))


def test_library_without_data_files_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "nothing-here"))
    assert not prototype_library_available()
    with pytest.raises(ExplorerInputError, match="EXPLORER_DATA_DIR"):
        load_prototype_library()


def test_a_template_of_a_parent_group_is_distorted_into_the_requested_subgroup(tiny_data_dir):
    from explorer.representation import LOOSE, detect_spacegroup

    library = load_prototype_library()
    assert library.query([11, 17], 123) == []  # no template of P4/mmm with the AB pattern
    found = library.query_subgroup([11, 17], 123, k=2, other_formulas_only=True)
    assert found and all(detect_spacegroup(p.structure) == 123 for p in found)
    first = found[0]
    assert first.parent_spacegroup in (221, 225) and first.origin()["parent_spacegroup"] == first.parent_spacegroup
    assert first.structure.composition == Composition("NaCl") and len(first.structure) == 2
    parent = library.query([11, 17], first.parent_spacegroup, k=5, other_formulas_only=True)
    assert any(StructureMatcher(**LOOSE).fit(first.structure, p.structure) for p in parent)
    assert "parent_spacegroup" not in parent[0].origin()
    assert library.query_subgroup([11, 17], 221, other_formulas_only=True) == []  # nothing above Pm-3m here

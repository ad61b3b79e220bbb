"""Reconstruction starts from known structures: same pattern and atom count, most similar cell, elements mapped."""

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from explorer.data import ProcessedSet
from explorer.errors import ExplorerInputError
from explorer.generators.descriptor.ead import EADParams
from explorer.generators.descriptor.reconstruction import Reconstructor, entry_scale
from explorer.generators.descriptor.templates import (
    TemplateStarts,
    cell_shape,
    template_structures,
    with_template_source,
)
from explorer.generators.descriptor.vector import ead_block
from explorer.prototypes import PrototypeLibrary
from explorer.representation import encode

PEROVSKITE = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def perovskite(a, a_site, b_site, anion):
    return Structure(Lattice.cubic(a), [a_site, b_site, anion, anion, anion], PEROVSKITE)


def library(structures) -> PrototypeLibrary:
    crystals = [encode(s) for s in structures]
    species = np.zeros((len(crystals), 60), np.uint8)
    for i, c in enumerate(crystals):
        species[i, : len(c.atomic_numbers)] = c.atomic_numbers
    return PrototypeLibrary(ProcessedSet(np.stack([c.matrix for c in crystals]), species,
                                         np.array([len(c.atomic_numbers) for c in crystals], np.int16),
                                         np.array([221] * len(crystals), np.int16),
                                         np.zeros(len(crystals), np.float32), np.array(["train"] * len(crystals)),
                                         np.array([f"t{i}" for i in range(len(crystals))])))


@pytest.fixture(scope="module")
def templates():
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return TemplateStarts(library([perovskite(3.9, "Sr", "Ti", "O"), cscl]))


def test_starts_come_from_templates_of_the_same_pattern_with_the_elements_mapped(templates):
    target = perovskite(4.2, "Ba", "Zr", "S").get_reduced_structure()
    numbers = [site.specie.Z for site in target]
    starts = templates.starts(numbers, target.lattice)
    assert len(starts) == 1 and starts[0].shape == (5, 3)
    placed = Structure(target.lattice, numbers, starts[0])
    assert StructureMatcher().fit(placed, target)  # Sr -> Ba, Ti -> Zr, O -> S in the same sites
    assert templates.starts([11, 17, 17], target.lattice) == []  # no AB2 template
    assert np.allclose(cell_shape(Lattice.cubic(2.0)), cell_shape(Lattice.cubic(5.0)))


def test_a_template_start_solves_what_random_starts_do_not_with_the_same_budget(templates):
    params = EADParams()
    target = perovskite(4.2, "Ba", "Zr", "S").get_reduced_structure()
    numbers = [[site.specie.Z for site in target]]
    block = ead_block([target], params)
    perturbed = [target.copy().perturb(0.3, seed=0), target.copy().perturb(0.5, seed=1)]
    scale = entry_scale(ead_block([target, *perturbed], params), params)
    settings = {"trials": 1, "hops": 1, "iterations": 60}
    random = Reconstructor(params, **settings).run(block, numbers, [target.lattice], scale, seed=0)[0]
    known = Reconstructor(params, templates=1, template_starts=templates, **settings).run(
        block, numbers, [target.lattice], scale, seed=0)[0]
    assert known.loss < 1e-3 < random.loss
    assert StructureMatcher().fit(known.structure, target)


def test_templates_need_a_source_and_fit_in_the_trials(templates):
    with pytest.raises(ExplorerInputError, match="template source"):
        Reconstructor(templates=2)
    with pytest.raises(ExplorerInputError, match="templates must be"):
        Reconstructor(trials=2, templates=3, template_starts=templates)


def test_templates_from_the_rows_of_a_structure_csv(tiny_csv, srtio3):
    assert len(template_structures(tiny_csv, ["train"])) == 4  # the malformed CIF is skipped
    settings = with_template_source({"templates": 1, "template_data": {"file": str(tiny_csv), "splits": ["val"]}})
    assert "template_data" not in settings
    source = settings["template_starts"]
    target = perovskite(4.2, "Ba", "Zr", "S").get_reduced_structure()
    numbers = [site.specie.Z for site in target]
    (start,) = source.starts(numbers, target.lattice)  # the val split's SrTiO3, Sr -> Ba, Ti -> Zr, O -> S
    assert StructureMatcher().fit(Structure(target.lattice, numbers, start), target)
    # the rows being reconstructed are not their own templates
    (val_row,) = template_structures(tiny_csv, ["val"])
    assert source.excluding([val_row]).starts(numbers, target.lattice) == []
    assert source.excluding([srtio3.copy().perturb(0.1, seed=0)]) is source  # another structure: kept


def test_template_data_errors(tiny_csv, tmp_path):
    missing = {"templates": 1, "template_data": {"file": str(tmp_path / "missing.csv.gz")}}
    with pytest.raises(ExplorerInputError, match="not found"):
        with_template_source(missing)
    assert with_template_source(missing, required=False)["templates"] == 0  # a model's default never fails
    with pytest.raises(ExplorerInputError, match="template_data must be"):
        with_template_source({"templates": 1, "template_data": str(tiny_csv)})
    with pytest.raises(ExplorerInputError, match="no template structures"):
        template_structures(tiny_csv, ["nope"])

import gzip
import math

import numpy as np
import pytest
from crystal_fixtures import tiny_rows, write_csv_gz

from explorer import data as data_module
from explorer.data import (
    ProcessedSet,
    load_processed,
    load_training_data,
    parse_cif,
    process_rows,
    read_rows,
    read_structure_rows,
    row_energy,
    source_cache_path,
)
from explorer.errors import ExplorerInputError
from explorer.fileio import file_sha256
from explorer.representation import MATRIX_ROWS, MAX_SITES


def test_read_rows_gzip_and_plain(tiny_csv, tmp_path):
    rows = read_rows(tiny_csv)
    assert len(rows) == 7
    assert set(rows[0]) == {"material_id", "formula", "nsites", "spacegroup", "formation_energy_per_atom",
                            "split", "cif"}
    plain = tmp_path / "plain.csv"
    plain.write_text(gzip.open(tiny_csv, "rt").read())
    assert read_rows(plain) == rows


def test_read_rows_errors(tmp_path):
    with pytest.raises(ExplorerInputError, match="not found"):
        read_rows(tmp_path / "missing.csv.gz")
    no_cif = tmp_path / "no_cif.csv"
    no_cif.write_text("material_id,formula\nx,NaCl\n")
    with pytest.raises(ExplorerInputError, match="cif"):
        read_rows(no_cif)
    not_gzip = tmp_path / "fake.csv.gz"
    not_gzip.write_text("material_id,cif\n")
    with pytest.raises(ExplorerInputError):
        read_rows(not_gzip)


def test_parse_cif(nacl):
    assert parse_cif(nacl.to(fmt="cif")).composition.reduced_formula == "NaCl"
    with pytest.raises(ExplorerInputError, match="malformed CIF"):
        parse_cif("data_x\nnot a cif at all\n")


def test_row_energy():
    assert row_energy({"formation_energy_per_atom": "-1.5"}) == -1.5
    assert row_energy({"heat_ref": "0.25"}) == 0.25
    assert math.isnan(row_energy({"formation_energy_per_atom": ""}))
    assert math.isnan(row_energy({}))


def test_process_rows_encodes_and_drops_bad_rows():
    rows = tiny_rows()
    processed = process_rows(rows, workers=1)
    assert len(processed) == 6  # the malformed CIF is dropped, the NaN-energy row kept (filtered later)
    assert "tiny-bad-cif" not in processed.ids
    assert processed.matrix.shape == (6, MATRIX_ROWS, 3)
    assert processed.species.shape == (6, MAX_SITES)
    by_id = {i: k for k, i in enumerate(processed.ids)}
    nacl = by_id["tiny-1"]
    assert processed.n_sites[nacl] == 2
    assert processed.species[nacl, :2].tolist() == [11, 17] and processed.species[nacl, 2:].sum() == 0
    assert processed.spacegroup[nacl] == 225
    assert processed.spacegroup[by_id["tiny-2"]] == 227
    assert processed.n_sites[by_id["tiny-4"]] == 5 and processed.split[by_id["tiny-4"]] == "val"
    assert processed.energy[by_id["tiny-1"]] == pytest.approx(-2.1)
    assert math.isnan(processed.energy[by_id["tiny-nan"]])
    # rows of the matrix beyond each structure's sites are empty
    for k, n in enumerate(processed.n_sites):
        assert np.all(processed.matrix[k, n:MAX_SITES + 1] == 0)


def test_processed_set_select_and_concatenate():
    processed = process_rows(tiny_rows()[:3], workers=1)
    mask = np.array([True, False, True])
    part = processed.select(mask)
    assert len(part) == 2 and part.ids.tolist() == ["tiny-1", "tiny-3"]
    both = ProcessedSet.concatenate([processed, part])
    assert len(both) == 5
    np.testing.assert_array_equal(both.matrix[3:], part.matrix)


def test_load_processed_uses_the_cache(tiny_csv, tmp_path, monkeypatch):
    first = load_processed(tiny_csv, workers=1, progress=False)
    caches = list((tmp_path / "cache").glob("tiny_structures-*-v*.npz"))
    assert len(caches) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(data_module, "process_rows", fail)
    second = load_processed(tiny_csv, workers=1, progress=False)
    for field in ProcessedSet.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    with pytest.raises(ExplorerInputError):
        load_processed(tmp_path / "missing.csv.gz")


def test_source_cache_path_names_the_file_its_content_what_and_version(tiny_csv, tmp_path):
    path = source_cache_path(tiny_csv, 3, "asym")
    assert path.parent == tmp_path / "cache"
    assert path.name.startswith("tiny_structures-") and path.name.endswith("-asym-v3.npz")
    assert source_cache_path(tiny_csv, 3).name.endswith(f"{file_sha256(tiny_csv)[:16]}-v3.npz")


def test_changed_source_is_processed_again(tmp_path):
    path = write_csv_gz(tmp_path / "tiny_structures.csv.gz", tiny_rows()[:2])
    assert len(load_processed(path, workers=1, progress=False)) == 2
    write_csv_gz(path, tiny_rows()[:3])
    assert len(load_processed(path, workers=1, progress=False)) == 3
    assert len(list((tmp_path / "cache").glob("tiny_structures-*.npz"))) == 2


def test_load_training_data_filters_splits_and_nan(tmp_path):
    rows = tiny_rows()
    write_csv_gz(tmp_path / "mp_structures.csv.gz", rows[:4] + rows[5:])
    wbm = [dict(r, id=r["material_id"].replace("tiny", "wbm")) for r in rows[4:5]]
    write_csv_gz(tmp_path / "wbm_structures.csv.gz", wbm,
                 columns=["id", "formula", "nsites", "formation_energy_per_atom", "split", "cif"])
    train = load_training_data(tmp_path, splits=("train",))
    assert sorted(train.ids.tolist()) == ["tiny-1", "tiny-2", "tiny-3"]  # no NaN energy, no bad CIF
    assert np.all(np.isfinite(train.energy))
    val = load_training_data(tmp_path, splits=("val",))
    assert val.ids.tolist() == ["tiny-4"]
    test = load_training_data(tmp_path, splits=("test",))
    assert test.ids.tolist() == ["wbm-5"]
    small = load_training_data(tmp_path, splits=("train", "val"), max_sites=2)
    assert sorted(small.ids.tolist()) == ["tiny-1", "tiny-2", "tiny-3"]
    with pytest.raises(ExplorerInputError, match="not found"):
        load_training_data(tmp_path / "nowhere")


def test_read_structure_rows_keeps_the_usable_rows_and_counts_the_malformed(tiny_csv):
    rows = read_structure_rows(tiny_csv, "train")
    assert len(rows) == 4 and rows.malformed == 1  # the NaN-energy row among them; the broken CIF counted
    assert [r.spacegroup for r in rows] == [225, 227, 221, 225] and rows[0].species == [11, 17]
    # the conditions of a model that takes an energy: rows without a finite one are no condition
    energetic = read_structure_rows(tiny_csv, "train", with_energy=True)
    assert len(energetic) == 3 and all(np.isfinite(r.energy) for r in energetic)
    assert len(read_structure_rows(tiny_csv, "train", limit=2)) == 2
    assert [r.structure.composition.reduced_formula for r in read_structure_rows(tiny_csv, max_atoms=2)] == ["CsCl"]
    with pytest.raises(ExplorerInputError, match="no usable rows"):
        read_structure_rows(tiny_csv, "nope")


def test_read_structure_rows_with_energy_needs_the_column(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "formation_energy_per_atom"} for row in tiny_rows()]
    path = write_csv_gz(tmp_path / "no_energy.csv.gz", rows, columns=["material_id", "split", "cif"])
    assert len(read_structure_rows(path)) == 6
    with pytest.raises(ExplorerInputError, match="no 'formation_energy_per_atom' column"):
        read_structure_rows(path, with_energy=True)

import json
from dataclasses import dataclass

import numpy as np

from explorer.fileio import append_lines, atomic_write_text, cached_arrays, file_sha256, read_json_lines


@dataclass
class _Arrays:
    values: np.ndarray


def test_atomic_write_text_replaces_the_whole_file(tmp_path):
    path = atomic_write_text(tmp_path / "deep" / "a.txt", "first\n")
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no temporary file left
    assert len(file_sha256(path)) == 64


def test_append_lines_ends_a_line_cut_short_before_appending(tmp_path):
    path = tmp_path / "records.jsonl"
    append_lines(path, [json.dumps({"row": 0})])
    append_lines(path, [json.dumps({"row": 1}), json.dumps({"row": 2})])
    assert [json.loads(line)["row"] for line in path.read_text().splitlines()] == [0, 1, 2]

    path.write_text(path.read_text()[:-5])  # a stop while writing row 2
    append_lines(path, [json.dumps({"row": 2})])
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1]) == {"row": 2}  # the cut line stays alone, unreadable
    assert [r["row"] for r in read_json_lines(path)] == [0, 1, 2]
    assert read_json_lines(tmp_path / "none.jsonl") == []


def test_cached_arrays_makes_once_then_reads(tmp_path):
    made = []

    def make():
        made.append(1)
        return _Arrays(np.arange(3.0))

    first = cached_arrays(tmp_path / "c" / "a.npz", _Arrays, make)
    second = cached_arrays(tmp_path / "c" / "a.npz", _Arrays, make)
    assert made == [1] and isinstance(second, _Arrays)
    np.testing.assert_array_equal(first.values, second.values)

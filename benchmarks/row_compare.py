"""Two methods of `explorer benchmark csp`, row by row, from their saved records: where one matches and the other
does not (loose tolerances), with the first candidate (a budget of one) and with any of the k, and what the first
method finds on the rows where the second returned nothing (for ion exchange: no template of the requested group).

    PYTHONPATH=. python benchmarks/row_compare.py explorer ion-exchange-relaxed [RECORD_DIR]

RECORD_DIR defaults to the test split's records (benchmarks/results/benchmark-csp-test-*). Prints one JSON object.
"""

import json
import sys
from pathlib import Path

from explorer.benchmark import read_records

LOOSE = 1  # per-candidate [strict, loose, rms, valid, in_group]
USAGE = "usage: python benchmarks/row_compare.py METHOD_A METHOD_B [RECORD_DIR]"


def first(record) -> bool:
    return bool(record.candidates) and bool(record.candidates[record.first][LOOSE])


def any_of(record) -> bool:
    return any(c[LOOSE] for c in record.candidates)


def compare(folder: Path, a: str, b: str) -> dict:
    ra, rb = read_records(folder / f"{a}.jsonl"), read_records(folder / f"{b}.jsonl")
    rows = sorted(set(ra) & set(rb))
    out = {"records": str(folder), "a": a, "b": b, "rows": len(rows)}
    for name, hit in (("first", first), ("any", any_of)):  # the rates themselves are in the benchmark's table
        out[f"{name}_loose_only_a"] = sum(hit(ra[i]) and not hit(rb[i]) for i in rows)
        out[f"{name}_loose_only_b"] = sum(hit(rb[i]) and not hit(ra[i]) for i in rows)
    empty = [i for i in rows if not rb[i].candidates]
    out["rows_b_returned_nothing"] = len(empty)
    out["a_there_first_loose"] = sum(first(ra[i]) for i in empty)
    out["a_there_any_loose"] = sum(any_of(ra[i]) for i in empty)
    return out


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        sys.exit(USAGE)
    if len(argv) == 3:
        folder = Path(argv[2])
    else:
        found = sorted(Path("benchmarks/results").glob("benchmark-csp-test-*"))
        if len(found) != 1:
            sys.exit(f"row_compare: give the record directory ({len(found)} test record directories found)")
        folder = found[0]
    print(json.dumps(compare(folder, argv[0], argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])

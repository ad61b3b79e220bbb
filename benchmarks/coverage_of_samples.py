"""Coverage of saved unconditional samples (a `<model>.samples.jsonl` of `explorer benchmark dng`) at other
thresholds than the benchmark's, e.g. those of the Descriptor family's table (MP: 0.4 / 10):

    PYTHONPATH=. python benchmarks/coverage_of_samples.py \
        benchmarks/results/benchmark-dng-test-fa7a11956a15/descriptor-mp.samples.jsonl 0.4 10
"""

import json
import sys
from pathlib import Path

from explorer.config import data_file
from explorer.coverage import coverage_metrics, fingerprints, reference_fingerprints
from explorer.fileio import read_json_lines
from explorer.structure_io import parse_cif


def main(path: Path, struct_cutoff: float, comp_cutoff: float) -> dict:
    structures = [parse_cif(t) for chunk in read_json_lines(path) for t in chunk["structures"]]
    reference = reference_fingerprints(data_file("mp_structures.csv.gz"), "test", 20, 1000, 2)
    return {"samples": str(path), "n": len(structures),
            **coverage_metrics(fingerprints(structures, 2), reference, struct_cutoff, comp_cutoff)}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))))

"""How many rows of a split have a twin among known structures (issue 16: what reconstruction from a model's own
training rows owes to retrieval): a loose StructureMatcher match (0.3 / 0.5 / 10) of the same atom count among
the template rows, the rows themselves left out (as reconstruction leaves them out). A look at the data, not a
choice. Usage::

    python benchmarks/twins.py --dataset carbon_24 --split test --limit 128 --max-atoms 24 --template-splits val
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="carbon_24")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument("--max-atoms", type=int, default=24)
    parser.add_argument("--template-splits", default="val", help="comma-separated")
    args = parser.parse_args(argv)

    from pymatgen.analysis.structure_matcher import StructureMatcher

    from explorer.config import data_file
    from explorer.data import read_structure_rows
    from explorer.generators.descriptor.templates import TemplateStarts, template_structures

    csv = data_file(f"{args.dataset}.csv.gz")
    rows = [r.structure for r in read_structure_rows(csv, args.split, args.max_atoms, args.limit)]
    known = TemplateStarts.from_structures(template_structures(csv, args.template_splits.split(","))).excluding(rows)
    by_size = defaultdict(list)
    for structure in known.rows.structures:
        by_size[len(structure)].append(structure)
    matcher = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)
    twins = [any(matcher.fit(s, t) for t in by_size[len(s)]) for s in rows]
    print(json.dumps({"dataset": args.dataset, "split": args.split, "n": len(rows),
                      "templates": len(known.rows.structures), "with_twin": sum(twins),
                      "rows_without_twin": [k for k, t in enumerate(twins) if not t],
                      "command": "python benchmarks/twins.py " + " ".join(argv if argv is not None else sys.argv[1:])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

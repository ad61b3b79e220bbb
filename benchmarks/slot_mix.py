"""Would cfm-normal samples in some of the pipeline's langevin slots find rows the pipeline misses? (issue 14)

Reads the per-row records of `explorer benchmark csp` for explorer, cfm-normal and ion-exchange (the folder, e.g.
`MODELS=explorer,cfm-normal,ion-exchange bash benchmarks/benchmark.sh csp-val 300`) and, counts any-of-8 loose
matches with the pipeline's last ``add`` candidates given to cfm-normal's first ``add`` samples instead: where
retrieval fills the four prototype slots these are langevin samples; where it is short, the highest-energy
langevin samples or distorted prototypes (the pipeline orders those by relaxed energy). A cfm sample counts only
when it matches and has the requested group (otherwise the pipeline replaces it).

    python benchmarks/slot_mix.py benchmarks/results/benchmark-csp-val-57b6824cef6c
"""

import json
import sys
from pathlib import Path

from explorer.benchmark import read_records


def hit(candidates, in_group: bool = False) -> bool:
    """Any candidate a loose match (and, with ``in_group``, in the requested group)."""
    return any(c[1] and (c[4] or not in_group) for c in candidates)


def main(folder: Path) -> dict:
    pipeline, cfm, retrieval = (read_records(folder / f"{m}.jsonl") for m in ("explorer", "cfm-normal", "ion-exchange"))
    rows = sorted(set(pipeline) & set(cfm) & set(retrieval))
    out = {"rows": len(rows), "rows_with_4_templates": sum(len(retrieval[r].candidates) >= 4 for r in rows),
           "explorer_any_loose": round(sum(hit(pipeline[r].candidates) for r in rows) / len(rows), 4)}
    for add in (1, 2, 4):
        found = sum(hit(pipeline[r].candidates[:8 - add]) or hit(cfm[r].candidates[:add], in_group=True)
                    for r in rows)
        out[f"last_{add}_to_cfm_any_loose"] = round(found / len(rows), 4)
    out["explorer_misses"] = [r for r in rows if not hit(pipeline[r].candidates)]
    out["of_those_cfm_any_of_8_in_group"] = [r for r in out["explorer_misses"] if hit(cfm[r].candidates, True)]
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))

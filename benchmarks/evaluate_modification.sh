#!/usr/bin/env bash
# Match rates of the shipped modification models: pairs (each non-lowest polymorph -> the lowest one with the
# same cell contents) from the val and test splits of mp_structures and wbm_structures, 100 steps, seed 0.
# Writes benchmarks/results/modification_<model>_<split>[_wbm].json.
# DRAWS=4: keep the best of 4 samples per pair by validity + requested space group (never the target);
# writes modification_<model>_draws4_<split>[_wbm].json.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}"
models="${MODELS:-mod-regression mod-palette mod-cfm mod-palette-cfm}"
splits="${SPLITS:-val test}"
draws="${DRAWS:-1}"
tag=""; [ "$draws" != 1 ] && tag="_draws${draws}"
for model in $models; do
  for split in $splits; do
    for source in mp wbm; do
      suffix=""; [ "$source" = wbm ] && suffix="_wbm"
      cmd="explorer evaluate modification --csv $data/${source}_structures.csv.gz --split $split --model $model --steps 100 --seed 0 --draws $draws --json"
      echo "$cmd" >&2
      $cmd | tail -n 1 | python -c "import json,sys; d=json.loads(sys.stdin.read()); d['command']=sys.argv[1]; print(json.dumps(d))" "$cmd" \
        > "benchmarks/results/modification_${model}${tag}_${split}${suffix}.json"
      cat "benchmarks/results/modification_${model}${tag}_${split}${suffix}.json"
    done
  done
done

#!/usr/bin/env bash
# Match rates of every shipped generation model on the MP val split (first 300 rows, for model selection)
# and the MP test split (all rows), <= 20 atoms, one sample per row, 100 steps, seed 0.
# Writes benchmarks/results/generation_<model>_<split>.json (the JSON line printed by the CLI).
# DRAWS=4: keep the best of 4 samples per row by validity + requested space group (never the row's structure);
# writes generation_<model>_draws4_<split>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}"
models="${MODELS:-ddpm ddim cfm-normal cfm-uniform cfm-uniform-unet1d}"
splits="${SPLITS:-val test}"
draws="${DRAWS:-1}"
suffix=""; [ "$draws" != 1 ] && suffix="_draws${draws}"
for model in $models; do
  for split in $splits; do
    limit=""; [ "$split" = val ] && limit="--limit 300"
    cmd="explorer evaluate generation --csv $data/mp_structures.csv.gz --split $split $limit --max-atoms 20 --model $model --steps 100 --seed 0 --draws $draws --json"
    echo "$cmd" >&2
    $cmd | tail -n 1 | python -c "import json,sys; d=json.loads(sys.stdin.read()); d['command']=sys.argv[1]; print(json.dumps(d))" "$cmd" \
      > "benchmarks/results/generation_${model}${suffix}_${split}.json"
    cat "benchmarks/results/generation_${model}${suffix}_${split}.json"
  done
done

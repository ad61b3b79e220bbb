#!/usr/bin/env bash
# Energy fidelity of the default generation model (or $MODEL): one sample per row of the MP val split (first 50
# rows) and test split (first 100 rows), <= 20 atoms, 100 sampling steps, seed 0; each sample relaxed with
# M3GNet-MP-2021.2.8-PES (batched, fmax 0.05 eV/Å, <= 500 FIRE steps) and its formation energy (against elemental
# references of the same potential) compared with the row's target.
# Writes benchmarks/results/fidelity_<model>_<split>.json (the JSON line printed by the CLI, plus the command).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}"
model_arg=""; [ -n "${MODEL:-}" ] && model_arg="--model $MODEL"
# PIPELINE=1: the first of the 8 candidates `explorer generate` returns (prototypes + network) instead
pipeline_arg=""; prefix=""; [ -n "${PIPELINE:-}" ] && pipeline_arg="--pipeline --n 8" && prefix="explorer_"
for split in ${SPLITS:-val test}; do
  limit=50; [ "$split" = test ] && limit=100
  cmd="explorer evaluate fidelity --csv $data/mp_structures.csv.gz --split $split --limit $limit --max-atoms 20 $model_arg --steps 100 --seed 0 --relax-steps 500 --threads 1 $pipeline_arg --json"
  echo "$cmd" >&2
  line=$($cmd | tail -n 1)
  name=$(python -c "import json,sys; print(json.loads(sys.argv[1])['model'])" "$line")
  python -c "import json,sys; d=json.loads(sys.argv[1]); d['command']=sys.argv[2]; print(json.dumps(d))" "$line" "$cmd" \
    > "benchmarks/results/fidelity_${prefix}${name}_${split}.json"
  cat "benchmarks/results/fidelity_${prefix}${name}_${split}.json"
done

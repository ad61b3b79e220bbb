#!/usr/bin/env bash
# Match rates of the shipped modification models: pairs (each non-lowest polymorph -> the lowest one with the
# same cell contents) from the val and test splits of mp_structures and wbm_structures, 100 steps, seed 0.
# VARIANTS (default "model"), each written to benchmarks/results/modification_<model>[_<variant>]_<split>[_wbm].json:
#   model                 the network alone, structures as sampled (--no-prototypes --relax-steps 0)
#   model-relaxed         the network alone, every sample relaxed with M3GNet (--no-prototypes, 300 steps)
#   prototypes-unrelaxed  the best prototype of the target space group (other formulas only) where there is one,
#                         else a sample; nothing relaxed (--relax-steps 0)
#   pipeline              what `explorer modify` returns first: prototype or sample, relaxed with M3GNet (defaults)
# DRAWS=4: keep the best of 4 samples per pair by validity + requested space group (never the target);
# adds _draws4 to the file name.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}"
models="${MODELS:-mod-regression mod-palette mod-cfm mod-palette-cfm}"
variants="${VARIANTS:-model}"
splits="${SPLITS:-val test}"
draws="${DRAWS:-1}"
tag=""; [ "$draws" != 1 ] && tag="_draws${draws}"
for model in $models; do
  for variant in $variants; do
    case "$variant" in
      model) options="--no-prototypes --relax-steps 0"; name="$model" ;;
      model-relaxed) options="--no-prototypes"; name="${model}_model-relaxed" ;;
      prototypes-unrelaxed) options="--relax-steps 0"; name="${model}_prototypes-unrelaxed" ;;
      pipeline) options=""; name="${model}_pipeline" ;;
      *) echo "unknown variant $variant" >&2; exit 2 ;;
    esac
    for split in $splits; do
      for source in mp wbm; do
        suffix=""; [ "$source" = wbm ] && suffix="_wbm"
        cmd="explorer evaluate modification --csv $data/${source}_structures.csv.gz --split $split --model $model --steps 100 --seed 0 --draws $draws $options --json"
        cmd="${cmd//  / }"
        echo "$cmd" >&2
        out="benchmarks/results/modification_${name}${tag}_${split}${suffix}.json"
        $cmd | tail -n 1 | python -c "import json,sys; d=json.loads(sys.stdin.read()); d['command']=sys.argv[1]; print(json.dumps(d))" "$cmd" > "$out"
        cat "$out"
      done
    done
  done
done

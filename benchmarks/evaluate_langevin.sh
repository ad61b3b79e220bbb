#!/usr/bin/env bash
# The langevin family's measurements (issue 15), in two lanes that can run side by side on the two cores:
#   bash benchmarks/evaluate_langevin.sh csp       # CSP: val (first 300 rows) and test (all rows), <= 20 atoms,
#                                                  #   one sample per row at the shipped default steps, seed 0,
#                                                  #   and the val rows without a prototype of their group
#   bash benchmarks/evaluate_langevin.sh coverage  # COV-R / COV-P / FD-CrystalNN of 1000 samples against the
#                                                  #   test rows (conditions: 1000 random train rows), langevin
#                                                  #   and cfm-normal, and the sanity row (those train structures)
# Each writes benchmarks/results/<kind>_<model>_<split>.json: the CLI's JSON line plus the command.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}/mp_structures.csv.gz"
export OMP_NUM_THREADS=1
source benchmarks/record.sh  # run OUT CMD...: the command's JSON line, with the command, into benchmarks/results/OUT.json
case "${1:-csp}" in
  csp)
    run generation_langevin_val explorer evaluate generation --csv "$data" --split val --limit 300 --max-atoms 20 --model langevin --seed 0 --workers 1 --json
    run generation_langevin_test explorer evaluate generation --csv "$data" --split test --max-atoms 20 --model langevin --seed 0 --workers 1 --json
    run generation_langevin_val_no_prototype_rows explorer evaluate generation --csv "$data" --split val --max-atoms 20 --model langevin --seed 0 --no-prototype-rows --workers 1 --json
    ;;
  coverage)
    run coverage_train-structures_test explorer evaluate coverage --csv "$data" --split test --max-atoms 20 --n 1000 --training-structures --workers 1 --json
    run coverage_langevin_test explorer evaluate coverage --csv "$data" --split test --max-atoms 20 --n 1000 --model langevin --seed 0 --workers 1 --json
    run coverage_cfm-normal_test explorer evaluate coverage --csv "$data" --split test --max-atoms 20 --n 1000 --model cfm-normal --seed 0 --workers 1 --json
    ;;
  *) echo "usage: $0 csp|coverage" >&2; exit 2 ;;
esac

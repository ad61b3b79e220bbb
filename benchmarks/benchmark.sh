#!/usr/bin/env bash
# explorer benchmark (issue 17): every registered generator and the peers on the same rows, one table.
#   bash benchmarks/benchmark.sh csp [LIMIT]   # test split of mp_structures, <= 20 atoms, k = 1 and 8 (first LIMIT
#                                              #   rows; default all), resumable: rerun to continue or extend
#   bash benchmarks/benchmark.sh csp-val [LIMIT]   # the same on val (for choices)
#   bash benchmarks/benchmark.sh dng           # coverage of 1000 unconditional samples vs the first 1000 test rows
# MODELS overrides the rows (comma-separated); the default leaves out the descriptor models in csp, whose
# reconstruction costs 5-45 s a structure (run them with MODELS=descriptor-mp).
# Writes benchmarks/results/benchmark_<task>_<split>.{json,md,png} and the per-row records beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}/mp_structures.csv.gz"
csp_models="ddpm,ddim,cfm-normal,cfm-uniform,cfm-uniform-unet1d,langevin,cspnet,explorer,pyxtal-random,pyxtal-random-relaxed,ion-exchange,ion-exchange-relaxed,test-structures"
limit=()
[ -n "${2:-}" ] && limit=(--limit "$2")
case "${1:-csp}" in
  csp) explorer benchmark csp --csv "$data" --split test --max-atoms 20 --k 8 "${limit[@]}" --models "${MODELS:-$csp_models}" --json ;;
  csp-val) explorer benchmark csp --csv "$data" --split val --max-atoms 20 --k 8 "${limit[@]}" --models "${MODELS:-$csp_models}" --json ;;
  dng) explorer benchmark dng --csv "$data" --split test --max-atoms 20 --n 1000 --limit 1000 ${MODELS:+--models "$MODELS"} --json ;;
  *) echo "usage: $0 csp|csp-val|dng [LIMIT]" >&2; exit 2 ;;
esac

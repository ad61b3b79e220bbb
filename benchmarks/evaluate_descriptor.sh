#!/usr/bin/env bash
# The descriptor family's measurements (issue 16, StructRepDiff, paper 001), in lanes that can run side by side:
#   bash benchmarks/evaluate_descriptor.sh LANE [DATASET...] (datasets: perov carbon mp, default all three)
#   bash benchmarks/evaluate_descriptor.sh reconstruction   # paper Table 1: the first 100 test rows of perov_5,
#                                                           #   carbon_24 and mp_structures (<= 20 atoms)
#                                                           #   reconstructed from their own descriptors
#   bash benchmarks/evaluate_descriptor.sh coverage         # unconditional generation per dataset: validity,
#                                                           #   COV-R / COV-P (CDVAE thresholds), FD, EMDs of 200
#                                                           #   samples against the first 1000 test rows
#   bash benchmarks/evaluate_descriptor.sh csp              # descriptor-mp given the formula (space group not
#                                                           #   used), first 100 mp test rows <= 20 atoms
# Reconstruction settings: the shipped models' (chosen on val, README); TEMPLATES (default 3): trials that start
# from known train structures (0: the random starts only). Each writes
# benchmarks/results/<kind>_<model or dataset>_<split>.json: the CLI's JSON line plus the command.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${EXPLORER_DATA_DIR:-../shared/data}"
export OMP_NUM_THREADS=1
SETTINGS="--trials 6 --hops 4 --iterations 150 --starts 8 --templates ${TEMPLATES:-3}"
source benchmarks/record.sh  # run OUT CMD...: the command's JSON line, with the command, into benchmarks/results/OUT.json
csv() { case "$1" in perov) echo "$data/perov_5.csv.gz" ;; carbon) echo "$data/carbon_24.csv.gz" ;;
               mp) echo "$data/mp_structures.csv.gz" ;; *) echo "unknown dataset $1" >&2; exit 2 ;; esac; }
atoms() { [ "$1" = carbon ] && echo 24 || echo 20; }
cutoffs() { [ "$1" = mp ] && echo "--struct-cutoff 0.4 --comp-cutoff 10" || echo "--struct-cutoff 0.2 --comp-cutoff 4"; }
lane="${1:-reconstruction}"; shift || true
for dataset in "${@:-perov carbon mp}"; do
  for d in $dataset; do
    case "$lane" in
      reconstruction)  # ROWS (default 100) test rows per dataset
        run "reconstruction_${d}_test" explorer evaluate reconstruction --csv "$(csv "$d")" --split test --limit "${ROWS:-100}" --max-atoms "$(atoms "$d")" $SETTINGS --workers 1 --json ;;
      coverage)  # SAMPLES (default 200) unconditional samples against the first 1000 test rows
        run "coverage_descriptor-${d}_test" explorer evaluate coverage --csv "$(csv "$d")" --split test --limit 1000 --max-atoms "$(atoms "$d")" --n "${SAMPLES:-200}" --unconditional --model "descriptor-$d" $(cutoffs "$d") --seed 0 --workers 1 --json ;;
      csp)  # ROWS (default 100) mp test rows, the formula given
        run generation_descriptor-mp_test explorer evaluate generation --csv "$data/mp_structures.csv.gz" --split test --limit "${ROWS:-100}" --max-atoms 20 --model descriptor-mp --seed 0 --workers 1 --json ;;
      *) echo "usage: $0 reconstruction|coverage|csp [perov carbon mp]" >&2; exit 2 ;;
    esac
    [ "$lane" = csp ] && break 2
  done
done

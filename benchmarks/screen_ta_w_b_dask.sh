#!/usr/bin/env bash
# The Ta–W–B screen of benchmarks/screen_ta_w_b.sh (75 conditions), serial and on a Dask LocalCluster of N worker
# processes (default 2, one torch thread each), from empty output directories; compares the two ranked.csv files
# and writes benchmarks/results/screen_ta_w_b_dask.json (wall-clock seconds of both, their ratio, same table?).
# Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-2}"
base="explorer screen --formula TaWB6 --formula TaW2B5 --formula Ta2WB5 --spacegroups 191,187,164,65,12 --energies -0.6:-0.4:0.05 --n 2 --model cfm-uniform --steps 100 --seed 0 --relax-steps 100 --fmax 0.1 --reference mp --threads 1 --json"
rm -rf runs/screen_ta_w_b_serial runs/screen_ta_w_b_dask
explorer screen --formula TaWB6 --spacegroups 191 --energies -0.5 --n 1 --model cfm-uniform --steps 5 --relax-steps 1 --reference mp --out /tmp/screen_warm --json > /dev/null  # references cached, files in the page cache
rm -rf /tmp/screen_warm
s0=$(date +%s.%N); $base --out runs/screen_ta_w_b_serial | tail -n 1 > /tmp/screen_serial.json; s1=$(date +%s.%N)
d0=$(date +%s.%N); $base --out runs/screen_ta_w_b_dask --scheduler "local:$workers" | tail -n 1 > /tmp/screen_dask.json; d1=$(date +%s.%N)
python - "$base" "$workers" "$s0" "$s1" "$d0" "$d1" > benchmarks/results/screen_ta_w_b_dask.json <<'PY'
import json, os, platform, sys
base, workers, s0, s1, d0, d1 = sys.argv[1:]
serial, dask = float(s1) - float(s0), float(d1) - float(d0)
same = open("runs/screen_ta_w_b_serial/ranked.csv").read() == open("runs/screen_ta_w_b_dask/ranked.csv").read()
summary = json.load(open("/tmp/screen_serial.json"))
per_condition = serial / summary["conditions"]
print(json.dumps({"command": base + " --out DIR [--scheduler local:%s]" % workers, "conditions": summary["conditions"],
                  "serial_wall_seconds": round(serial, 1), "dask_wall_seconds": round(dask, 1), "workers": int(workers),
                  "speedup": round(serial / dask, 3), "same_ranked_csv": same,
                  "serial_seconds_per_condition": round(per_condition, 3),
                  "cpu": platform.machine(), "cores": os.cpu_count()}, indent=1))
PY
cat benchmarks/results/screen_ta_w_b_dask.json

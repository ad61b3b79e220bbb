#!/usr/bin/env bash
# The paper's Ta–W–B screen (§7) at small scale on the CPU: 3 formulas × 5 space groups × 5 target energies
# = 75 conditions, 2 candidates each (100 sampling steps), M3GNet pre-relaxation (≤ 100 FIRE steps, fmax
# 0.1 eV/Å), hull of the MP Ta–W–B entries. Starts from an empty output directory (runs/screen_ta_w_b) and
# writes benchmarks/results/screen_ta_w_b.json (the CLI's JSON line, the command and the wall-clock time).
# The elemental references (Ta, W, B) are relaxed on first use and cached in ~/.cache/explorer.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/screen_ta_w_b}"
rm -rf "$out"
cmd="explorer screen --formula TaWB6 --formula TaW2B5 --formula Ta2WB5 --spacegroups 191,187,164,65,12 --energies -0.6:-0.4:0.05 --n 2 --model cfm-uniform --steps 100 --seed 0 --relax-steps 100 --fmax 0.1 --reference mp --threads 1 --out $out --json"
echo "$cmd" >&2
start=$(date +%s.%N)
$cmd | tail -n 1 > /tmp/screen_ta_w_b_last_line.json
end=$(date +%s.%N)
python - "$cmd" "$start" "$end" /tmp/screen_ta_w_b_last_line.json > benchmarks/results/screen_ta_w_b.json <<'PY'
import json, os, platform, sys
cmd, start, end, path = sys.argv[1:]
summary = json.load(open(path))
summary.update(command=cmd, wall_seconds=round(float(end) - float(start), 1), cpu=platform.machine(),
               cores=os.cpu_count())
print(json.dumps(summary, indent=1))
PY
cat benchmarks/results/screen_ta_w_b.json

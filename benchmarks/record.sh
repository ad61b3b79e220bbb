# Sourced by the benchmark scripts: record OUT CMD... runs CMD, keeps its last line (a JSON object) with the
# command added as benchmarks/results/OUT.json, and prints it.
run() {
  local out="benchmarks/results/$1.json"; shift
  echo "$*" >&2
  "$@" | tail -n 1 | python -c "import json,sys; d=json.loads(sys.stdin.read()); d['command']=sys.argv[1]; print(json.dumps(d))" "$*" > "$out"
  cat "$out"
}

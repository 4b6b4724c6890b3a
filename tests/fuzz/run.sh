#!/usr/bin/env bash
# Fuzzes a live `plexe serve` with schemathesis from its own /openapi.json: every check, every
# phase (examples, coverage, fuzzing, stateful), no operation excluded, a fixed seed. Fails on
# any failure, and when fewer than PLEXE_FUZZ_MIN_CASES (default 1000) cases were generated.
# Called by tests/run.sh after the cargo tests; runs alone too (it needs ./.venv with
# tests/requirements.txt installed, which tests/run.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv="$root/.venv"
seed=${PLEXE_FUZZ_SEED:-20261206}
max_examples=${PLEXE_FUZZ_MAX_EXAMPLES:-40}
min_cases=${PLEXE_FUZZ_MIN_CASES:-1000}

cargo build -p functions --bin plexe --locked
plexe="${CARGO_TARGET_DIR:-$root/target}/debug/plexe"

work=$(mktemp -d "${TMPDIR:-/tmp}/plexe-fuzz.XXXXXX")
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$plexe" serve --host 127.0.0.1 --port "$port" --data-dir "$work/data" > "$work/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  if [ "${PLEXE_FUZZ_KEEP:-0}" = 1 ]; then echo "fuzz: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$base/health')" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; echo "fuzz: plexe serve exited" >&2; exit 1; fi
  sleep 0.1
done
key=$(cat "$work/data/admin.key")

echo "fuzz: schemathesis against $base (seed $seed, max examples $max_examples per operation and phase)"
status=0
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/tests/fuzz${PYTHONPATH:+:$PYTHONPATH}" \
  "$venv/bin/schemathesis" --config-file "$root/tests/fuzz/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --seed "$seed" \
  --max-examples "$max_examples" \
  --generation-database none \
  --workers 1 \
  --request-timeout 30 \
  --header "Authorization: Bearer $key" \
  --report ndjson --report-ndjson-path "$work/events.ndjson" \
  --no-color ${PLEXE_FUZZ_EXTRA:-} \
  || status=$?

# The number of generated cases, from the run's events.
cases=$("$venv/bin/python" - "$work/events.ndjson" <<'PY'
import json, sys
count = 0
with open(sys.argv[1]) as events:
    for line in events:
        event = json.loads(line)
        for name, body in event.items():
            if name == "ScenarioFinished":
                recorder = body.get("recorder", {})
                count += len(recorder.get("cases", {}))
print(count)
PY
)
echo "fuzz: $cases cases generated"
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "fuzz: the server died during the run" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "fuzz: schemathesis failed (exit $status)" >&2
  exit "$status"
fi
if [ "$cases" -lt "$min_cases" ]; then
  echo "fuzz: only $cases cases generated, fewer than $min_cases" >&2
  exit 1
fi
echo "fuzz: passed"

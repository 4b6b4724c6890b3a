#!/usr/bin/env bash
# Smoke test of the functions under cargo-lambda (called by tests/run.sh with the venv on PATH
# and moto at $PLEXE_TEST_MOTO_ENDPOINT): `cargo lambda watch` serves the keys function over
# HTTP, and `cargo lambda invoke` drives keys with an API Gateway v2 event and the trainer with
# an SQS event of three messages, one unreadable.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
moto="${PLEXE_TEST_MOTO_ENDPOINT:?run through tests/run.sh}"
name="plexe-smoke-$$"

# Resources on moto for this run alone.
queues=$(python - "$moto" "$name" <<'PY'
import sys, boto3
endpoint, name = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
boto3.client("dynamodb", **kw).create_table(
    TableName=name, BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
boto3.client("s3", **kw).create_bucket(Bucket=name)
sqs = boto3.client("sqs", **kw)
print(sqs.create_queue(QueueName=name)["QueueUrl"], sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"])
PY
)
read -r queue_url dlq_url <<< "$queues"
envs="PLEXE_BACKEND=aws,PLEXE_TABLE=$name,PLEXE_BUCKET=$name,PLEXE_QUEUE_URL=$queue_url,PLEXE_DLQ_URL=$dlq_url"
envs="$envs,AWS_ENDPOINT_URL=$moto,AWS_REGION=us-east-1,AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test"

# The binaries `cargo test --workspace` just built. cargo-lambda's own `cargo run` would build
# them again, because `-p functions` alone unifies dependency features differently from the
# workspace (tower, rustix), which rebuilds tract and shared: minutes on 2 cores. So
# `cargo lambda watch --only-lambda-apis` serves the Runtime API and the function URL, and we
# start the prebuilt function on it, as cargo-lambda prints (function name `_`).
bin_dir="$(cargo metadata --format-version 1 --no-deps | python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"

log="${TMPDIR:-/tmp}/plexe-lambda-smoke-$$.log"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
fail() { echo "lambda smoke: $*" >&2; tail -n 30 "$log" >&2; exit 1; }

# Serves one prebuilt function: its own `cargo lambda watch` (in its own process group, so
# stopping it stops everything it started) and the binary polling that emulator.
serve_function() {
  port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  setsid cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >> "$log" 2>&1 &
  pids+=($!)
  # The function exits if the Runtime API is not up yet: wait until it accepts connections.
  for _ in $(seq 1 100); do
    if python -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then break; fi
    sleep 0.1
  done
  IFS=',' read -ra pairs <<< "$envs"
  env "${pairs[@]}" AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
    "$bin_dir/$1" >> "$log" 2>&1 &
  pids+=($!)
}

serve_function keys
# Over HTTP, through cargo-lambda's function URL emulation.
health=""
for _ in $(seq 1 100); do
  if health=$(curl -sf -m 10 "http://127.0.0.1:$port/lambda-url/_/health"); then break; fi
  sleep 0.2
done
[[ "$health" == *'"status":"ok"'* ]] || fail "GET /health through cargo lambda watch gave: $health"

# An API Gateway HTTP API event and an SQS event, through `cargo lambda invoke`.
got=$(cargo lambda invoke _ -A 127.0.0.1 -P "$port" --data-file "$root/tests/fixtures/lambda/apigw-v2-get-health.json")
[[ "$got" == *'"statusCode":200'* ]] || fail "keys with an API Gateway v2 event gave: $got"

serve_function trainer
got=""
for _ in $(seq 1 50); do
  if got=$(cargo lambda invoke _ -A 127.0.0.1 -P "$port" --data-file "$root/tests/fixtures/lambda/sqs-event-one-bad-message.json" 2>/dev/null); then break; fi
  sleep 0.2
done
[[ "$got" == '{"batchItemFailures":[{"itemIdentifier":"m-2"}]}' ]] || fail "trainer with an SQS event gave: $got"
echo "lambda smoke: ok"

#!/usr/bin/env bash
# A smoke test of a running plexe API at any base URL: a deployed stack (the API Gateway URL)
# or a local `plexe serve`. Run it after every deploy:
#
#   tests/deployed_smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com "$PLEXE_API_KEY"
#
# The key needs the read, write and predict scopes. It uploads a small table it makes itself,
# builds a model from an intent, waits for READY, deploys it, predicts one row, a batch and the
# whole table as a batch prediction job, then deletes what it made (also when a step fails). Each step prints one line; the first
# failure prints the answer and exits 1. Needs curl and python3 (for reading JSON).
#
# Environment: PLEXE_SMOKE_BUILD_TIMEOUT_S (default 900) bounds the wait for the build;
# CURL_CA_BUNDLE points curl at a private CA (a local server with --tls-cert).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BASE_URL API_KEY   (e.g. $0 http://127.0.0.1:8080 \"\$(cat plexe-data/admin.key)\")" >&2
  exit 2
fi
base=${1%/}
key=$2
timeout_s=${PLEXE_SMOKE_BUILD_TIMEOUT_S:-900}
model="smoke-$(date +%s)-$RANDOM"
work=$(mktemp -d)
dataset_id=""
deployment_id=""
built=""

say() { printf 'smoke: %s\n' "$*"; }
fail() {
  say "FAILED: $*" >&2
  if [ -s "$work/body" ]; then
    head -c 2000 "$work/body" >&2
    echo >&2
  fi
  exit 1
}

# call METHOD PATH [curl args…]: the answer's body goes to $work/body, its status to $status.
call() {
  local method=$1 path=$2
  shift 2
  status=$(curl --silent --show-error --max-time 60 --output "$work/body" --write-out '%{http_code}' \
    --request "$method" --header "Authorization: Bearer $key" "$@" "$base$path") \
    || fail "$method $path: no answer from $base"
}

# expect STATUS WHAT: fails unless the last call answered STATUS.
expect() {
  [ "$status" = "$1" ] || fail "$2: expected HTTP $1, got $status"
}

# field EXPR: a value from the last answer (`d` is the parsed JSON), printed as text.
field() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$work/body" "$1"
}

# After a failure: deletes what this run made, best effort, in reverse order.
cleanup() {
  local path
  for path in ${deployment_id:+"/models/$model/deployments/$deployment_id"} \
      ${built:+"/models/$model"} ${dataset_id:+"/datasets/$dataset_id"}; do
    curl --silent --max-time 60 --output /dev/null --request DELETE \
      --header "Authorization: Bearer $key" "$base$path" || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

call GET /health
expect 200 "GET /health"
say "health: $(field 'd["status"]')"

# A table with a clear signal, so any sane model learns it: churned when usage is low and the
# contract is monthly.
python3 - "$work/table.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("tenure_months,monthly_usage_hours,contract,support_tickets,churned\n")
    for _ in range(400):
        tenure = random.randint(1, 72)
        usage = round(random.uniform(0, 60), 1)
        contract = random.choice(["monthly", "yearly", "two_year"])
        tickets = random.randint(0, 6)
        risk = (usage < 20) + (contract == "monthly") + (tickets > 3) + (tenure < 12)
        churned = "yes" if risk + random.random() > 2.2 else "no"
        f.write(f"{tenure},{usage},{contract},{tickets},{churned}\n")
PY

call POST "/datasets?name=$model" --header 'Content-Type: text/csv' --data-binary "@$work/table.csv"
expect 201 "POST /datasets"
dataset_id=$(field 'd["dataset_id"]')
say "dataset: $dataset_id ($(field 'd["row_count"]') rows)"

printf '{"intent": "predict whether a customer churned from their usage and contract", "dataset_id": "%s", "time_budget_s": 10}' \
  "$dataset_id" > "$work/build.json"
call POST "/models/$model" --header 'Content-Type: application/json' --data-binary "@$work/build.json"
expect 202 "POST /models/$model"
built=yes
version=$(field 'd["model_version"]')
say "build: $model $version queued"

deadline=$(( $(date +%s) + timeout_s ))
while :; do
  call GET "/models/$model/$version/status"
  expect 200 "GET /models/$model/$version/status"
  state=$(field 'd["status"]')
  case $state in
    READY) break ;;
    ERROR) fail "the build ended in ERROR: $(field 'd.get("error")')" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "the build is still $state after ${timeout_s} s"
  sleep 2
done
call GET "/models/$model/$version/describe"
expect 200 "GET /models/$model/$version/describe"
say "built: $version READY, target $(field 'd.get("target")')"

call POST "/models/$model/deploy" --header 'Content-Type: application/json' \
  --data-binary "{\"model_version\": \"$version\"}"
expect 201 "POST /models/$model/deploy"
deployment_id=$(field 'd["deployment_id"]')
say "deployed: $deployment_id"

row='{"tenure_months": 3, "monthly_usage_hours": 4.5, "contract": "monthly", "support_tickets": 5}'
call POST "/models/$model/$version/infer" --header 'Content-Type: application/json' --data-binary "$row"
expect 200 "POST /models/$model/$version/infer"
say "infer: $(field 'd["result"]')"

call POST "/models/$model/$version/predictions" --header 'Content-Type: application/json' \
  --data-binary "[$row, {\"tenure_months\": 60, \"monthly_usage_hours\": 45, \"contract\": \"two_year\", \"support_tickets\": 0}]"
expect 200 "POST /models/$model/$version/predictions"
count=$(field 'len(d)')
[ "$count" = 2 ] || fail "a batch of 2 rows answered $count predictions"
say "batch: $count predictions"

# The whole table as a batch prediction job (what a file over the request limit takes): queued,
# polled until it has finished, its result downloaded (on AWS a redirect to S3).
call POST "/models/$model/$version/prediction-jobs" --header 'Content-Type: application/json' \
  --data-binary "{\"dataset_id\": \"$dataset_id\"}"
expect 202 "POST /models/$model/$version/prediction-jobs"
job=$(field 'd["job_id"]')
while :; do
  call GET "/models/$model/$version/prediction-jobs/$job"
  expect 200 "GET /models/$model/$version/prediction-jobs/$job"
  state=$(field 'd["status"]')
  case $state in
    SUCCEEDED) break ;;
    FAILED) fail "the prediction job failed: $(field 'd.get("error")')" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "the prediction job is still $state"
  sleep 1
done
result_url=$(field 'd["result_url"]')
status=$(curl --silent --show-error --max-time 120 --location --output "$work/result.csv" \
  --write-out '%{http_code}' --header "Authorization: Bearer $key" "$base$result_url") \
  || fail "GET $result_url: no answer"
expect 200 "GET $result_url"
lines=$(wc -l < "$work/result.csv")
[ "$lines" = 401 ] || fail "the job's result has $lines lines, not 401"
say "batch job: $job, $((lines - 1)) rows predicted"

call DELETE "/models/$model/deployments/$deployment_id"
expect 200 "DELETE /models/$model/deployments/$deployment_id"
deployment_id=""
call DELETE "/models/$model"
expect 200 "DELETE /models/$model"
built=""
call DELETE "/datasets/$dataset_id"
expect 200 "DELETE /datasets/$dataset_id"
dataset_id=""
say "cleaned up: ok"

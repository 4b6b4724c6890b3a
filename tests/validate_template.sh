#!/usr/bin/env bash
# Validates infra/template.yaml three ways, offline and without AWS credentials, failing on any
# error or warning: cfn-lint over the SAM template, `sam validate --lint`, and cfn-lint over the
# template expanded by samtranslator plus the deployment checks (tests/infra/validate_template.py).
# Needs cfn-lint and aws-sam-cli on PATH (tests/requirements.txt; tests/run.sh sets PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PLEXE_TEST_PYTHON:-python3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# sam validate needs a region; it never calls AWS with --lint, but botocore may look for
# credentials, so dummy ones keep it from searching the machine's profiles.
AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-plexe-template-lint} \
AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-plexe-template-lint} \
SAM_CLI_TELEMETRY=0 \
  sam validate --lint --region us-east-1 -t infra/template.yaml >"$log" 2>&1 &
sam_pid=$!

status=0
"$python" tests/infra/validate_template.py infra/template.yaml || status=1
if wait "$sam_pid"; then
  echo "sam validate --lint: $(tail -n 1 "$log")"
else
  echo "sam validate --lint failed:" >&2
  cat "$log" >&2
  status=1
fi
exit "$status"

#!/usr/bin/env bash
# Checks the CDK app (infra/cdk) offline, without AWS credentials: installs its npm packages
# when infra/cdk/package-lock.json changed since the last install, compiles it, runs
# `cdk synth` against placeholder `bootstrap` files (no Rust build needed), then
# tests/infra/parity.py: cfn-lint over the output (any match fails), the deployment checks the
# SAM template passes, the same stack as infra/template.yaml's SAM expansion, and broken copies
# rejected. Needs node/npm, and cfn-lint + aws-sam-cli's samtranslator in the Python that
# PLEXE_TEST_PYTHON names (tests/run.sh sets it to its venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PLEXE_TEST_PYTHON:-python3}
cdk=infra/cdk
started=$SECONDS

# Offline and quiet: no version check, notices or telemetry, no lookups (--no-lookups). Without
# credentials the CLI asks no AWS service for the default account (with any, it would call STS):
# none from the environment, the machine's AWS files or the instance metadata service.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE

# npm ci only when the lock file changed since the last install (or an install was cut short).
stamp=$cdk/node_modules/.installed-package-lock.json
if ! cmp -s "$cdk/package-lock.json" "$stamp" 2>/dev/null \
  || [ ! -x "$cdk/node_modules/.bin/cdk" ] || [ ! -x "$cdk/node_modules/.bin/tsc" ]; then
  (cd "$cdk" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$cdk/package-lock.json" "$stamp"
fi

# Compile (incremental: dist/.tsbuildinfo) with the pinned TypeScript.
"$cdk/node_modules/.bin/tsc" -p "$cdk"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# cargo-lambda's layout: <codeDir>/<binary>/bootstrap, one per function of the templates.
for binary in $("$python" -c 'import sys; sys.path.insert(0, "tests/infra"); from expected import BINARIES; print(*BINARIES.values())'); do
  mkdir -p "$work/code/$binary"
  printf '#!/bin/sh\n# placeholder: the real binary comes from cargo lambda build\nexit 1\n' >"$work/code/$binary/bootstrap"
  chmod +x "$work/code/$binary/bootstrap"
done

(cd "$cdk" && node_modules/.bin/cdk synth --quiet --ci --no-lookups --no-notices --no-version-reporting \
  -c codeDir="$work/code" --output "$work/cdk.out" >"$work/synth.log" 2>&1) || {
  echo "cdk synth failed:" >&2
  cat "$work/synth.log" >&2
  exit 1
}
# Any warning CDK prints at synth (deprecations, validation findings) fails the check too.
if grep -q "[^[:space:]]" "$work/synth.log"; then
  echo "cdk synth printed:" >&2
  cat "$work/synth.log" >&2
  exit 1
fi

"$python" tests/infra/parity.py infra/template.yaml "$work/cdk.out/plexe.template.json"
echo "CDK check: $((SECONDS - started)) s"

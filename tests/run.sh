#!/usr/bin/env bash
# The one test command (README): installs what the tests need into ./.venv (moto's server,
# onnxruntime, template linters), starts moto on a free loopback port for the AWS adapters,
# runs format and lint checks and every test, and stops moto again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Reinstall when the requirements changed or an install was cut short (its tools missing).
if ! cmp -s tests/requirements.txt "$venv/.installed-requirements" 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/cargo-lambda" ] \
  || [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-python-client" ]; then
  rm -f "$venv/.installed-requirements"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$venv/.installed-requirements"
fi
export PATH="$venv/bin:$PATH"
export PLEXE_TEST_PYTHON="$venv/bin/python"

# The SAM template: cfn-lint, sam validate --lint, cfn-lint over the samtranslator expansion.
tests/validate_template.sh
tests/infra/check_cdk.sh

# moto's server on a free loopback port, stopped on exit whatever happens.
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "${TMPDIR:-/tmp}/plexe-moto-$port.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  sleep 0.1
done
export PLEXE_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# keys, datasets and models as Lambda builds them, their package alone (cargo then builds
# `shared` without `serving`, the model runtime): clippy on that configuration, and no tract in
# the binaries. The smoke test below then runs these lean binaries.
cargo clippy -p api-functions --bins --locked -- -D warnings
cargo build -p api-functions --bins --locked
for f in keys datasets models; do
  if nm -C "target/debug/$f" | grep -q 'tract_core::'; then
    echo "target/debug/$f links tract: build functions/api without shared's serving feature" >&2
    exit 1
  fi
done
# schemathesis against a live `plexe serve` and its own /openapi.json.
tests/fuzz/run.sh
tests/console/run.sh
tests/lambda_smoke.sh

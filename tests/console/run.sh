#!/usr/bin/env bash
# The console's browser test (README "Console"): Debian's Chromium driven by playwright-core
# through a whole flow against a fresh `plexe serve` (the debug binary `cargo test` built), with
# axe-core, a 375 px viewport check and a keyboard check on every page. Screenshots go to
# target/console-screenshots/. Needs root for the one-time `apt-get install chromium` (no
# browser is downloaded any other way), node and npm.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd ../.. && pwd)

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
fi

# npm ci only when the lock file changed since the last install (or the install is missing).
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock
fi

export PLEXE_BIN="${PLEXE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/plexe}"
export PLEXE_DATASETS_DIR="${PLEXE_DATASETS_DIR:-$root/../shared/datasets}"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$root/target/console-screenshots}"
if [ ! -x "$PLEXE_BIN" ]; then
  echo "no plexe binary at $PLEXE_BIN: run cargo build -p functions --bin plexe (or cargo test) first" >&2
  exit 1
fi
node --test --test-reporter=spec "$here/console.test.mjs"
echo "screenshots in $SCREENSHOT_DIR"

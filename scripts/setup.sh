#!/usr/bin/env bash
# Sets up a fresh clone: pnpm (pinned), dependencies, Debian's Chromium for the browser tests, and a build.
# Safe to run again; each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1 COREPACK_INTEGRITY_KEYS=0

PNPM_VERSION=12.4.2
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION" >&2
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || npm install -g "pnpm@$PNPM_VERSION"
fi

# Headless Chromium for the WebGL/WASM browser tests (Debian's package; playwright's own download is unreachable).
if [ "${KVT_SKIP_CHROMIUM:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: chromium could not be installed; browser tests will be skipped" >&2
  else
    echo "setup: no chromium and no root apt-get; browser tests will be skipped" >&2
  fi
fi

pnpm install --frozen-lockfile 2>&1 | tail -n 3
pnpm build 2>&1 | tail -n 5

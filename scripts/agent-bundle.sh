#!/usr/bin/env bash
# Stages what profiles/deploy-agent.yaml copies into the agent image under /opt/bareon:
#   bin/node           the Node binary running this script (bareon needs >= 20.19; Debian 12's own is 18)
#   lib/bareon/        bareon's dist/, profiles/ and package.json, with production dependencies only
#   bin/bareon*        wrappers for bareon, bareon-deploy and bareon-build
# Usage: scripts/agent-bundle.sh [OUT]   (default: build/agent)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/agent}
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error(`agent-bundle: Node ${process.version} is too old; bareon needs >= 20.19`); process.exit(1) }'
[ -f dist/src/cli/bareon-deploy.js ] || { echo "agent-bundle: no dist/; run npm run build first" >&2; exit 1; }
rm -rf "$out.tmp"
mkdir -p "$out.tmp/bin" "$out.tmp/lib/bareon"
cp -a dist profiles package.json package-lock.json "$out.tmp/lib/bareon/"
rm -rf "$out.tmp/lib/bareon/dist/test"
(cd "$out.tmp/lib/bareon" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
cp "$(command -v node)" "$out.tmp/bin/node"
for cli in bareon bareon-deploy bareon-build; do
  printf '#!/bin/sh\nexec /opt/bareon/bin/node /opt/bareon/lib/bareon/dist/src/cli/%s.js "$@"\n' "$cli" >"$out.tmp/bin/$cli"
  chmod 0755 "$out.tmp/bin/$cli"
done
rm -rf "$out" && mv "$out.tmp" "$out"
echo "agent-bundle: $out ($(du -sh "$out" | cut -f1), node $(node --version))"

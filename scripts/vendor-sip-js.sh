#!/usr/bin/env bash
# Vendors SIP.js for the browser phone page (/phone): one ES-module bundle made by esbuild
# from npm's sip.js, both pinned, plus SIP.js's licence. Run once when SIP.js is upgraded and
# commit the result; the project's build never runs npm (docs/decisions.md, "The browser
# phone page").
set -euo pipefail

SIPJS_VERSION=0.21.2
ESBUILD_VERSION=0.28.2
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/web-admin/assets"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact "sip.js@$SIPJS_VERSION" "esbuild@$ESBUILD_VERSION" >/dev/null
printf 'export * from "sip.js";\n' > entry.js
npx esbuild entry.js --bundle --format=esm --minify --target=es2020 --legal-comments=none \
    --outfile="$out/sip-$SIPJS_VERSION.min.js"
cp node_modules/sip.js/LICENSE.md "$out/sip.js-LICENSE.md"
echo "wrote $out/sip-$SIPJS_VERSION.min.js and $out/sip.js-LICENSE.md"

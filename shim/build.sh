#!/usr/bin/env bash
# Builds the bridge's native parts with the machine's cc:
#   OUT/libvfiosim-shim.so  the LD_PRELOAD shim (shim/vfiosim_shim.c)
#   OUT/bridge.node         the daemon's N-API addon (native/bridge_addon.c), against Node's headers
# Usage: shim/build.sh [OUT]   (default OUT: dist/native). `npm run build:shim` runs it;
# `vfiosim exec`/`serve` and the tests run it on demand when an output is missing or stale.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist/native}
cc=${CC:-cc}
mkdir -p "$out"
node_inc=$(node -p "require('path').resolve(process.execPath, '..', '..', 'include', 'node')")
[ -f "$node_inc/node_api.h" ] || node_inc=/usr/include/node
[ -f "$node_inc/node_api.h" ] || { echo "shim/build.sh: Node's headers (node_api.h) not found" >&2; exit 1; }
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
$cc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror -fvisibility=hidden \
  -o "$tmp/libvfiosim-shim.so" "$root/shim/vfiosim_shim.c" -ldl -lpthread
$cc -std=gnu11 -O2 -g -fPIC -shared -Wall -Werror -I"$node_inc" \
  -o "$tmp/bridge.node" "$root/native/bridge_addon.c"
mv -f "$tmp/libvfiosim-shim.so" "$out/libvfiosim-shim.so"
mv -f "$tmp/bridge.node" "$out/bridge.node"

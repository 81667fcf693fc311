#!/usr/bin/env bash
# npm's install step for Lading itself: builds native/ when Debian's libdeflate-dev is installed:
# lading_gzip (libdeflate gzip members, native/gzip_member.c) and lading_mount (mount(2),
# umount2(2) and syncfs(2) for `lading run`, native/mount.c). Both are optional: without them (no
# library, no compiler, a failed build) Lading still works, compresses gzip with Node's zlib
# (slower, about 1.7% larger; src/io/native-gzip.ts) and runs mount(8), umount(8) and `sync -f`
# (src/run/native-mount.ts), so a failure is a note here and never fails `npm install`. Strict only where the fast path must be the one tested: Lading's own CI
# (CI=true in a checkout, not a copy installed under node_modules/) or LADING_REQUIRE_NATIVE=1.
# test/install.test.ts runs this with CC=false and checks the install succeeds.
set -uo pipefail
cd "$(dirname "$0")/.."
strict=false
if [ "${LADING_REQUIRE_NATIVE:-}" = 1 ]; then strict=true
elif [ "${CI:-}" = true ] && [[ "$PWD" != */node_modules/* ]]; then strict=true; fi
log="native/build-native.log"
if [ ! -f /usr/include/libdeflate.h ]; then
  msg="libdeflate-dev is not installed: gzip layers will be compressed with Node's zlib (apt-get install libdeflate-dev, then npm rebuild, for the faster encoder)"
  if [ "$strict" = true ]; then echo "lading: $msg" >&2; exit 1; fi
  echo "lading: note: $msg" >&2
  exit 0
fi
# npm hands its own node-gyp to install scripts; run by hand, use npm's copy.
gyp="${npm_config_node_gyp:-}"
if [ -z "$gyp" ]; then
  if command -v node-gyp >/dev/null; then gyp=node-gyp
  else gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"; fi
fi
if [[ "$gyp" == *.js ]]; then gyp=(node "$gyp"); else gyp=("$gyp"); fi
# Build against the headers of the Node that runs us (no download: this machine has no internet).
prefix="$(dirname "$(dirname "$(command -v node)")")"
nodedir=()
[ -f "$prefix/include/node/node_api.h" ] && nodedir=(--nodedir="$prefix")
if "${gyp[@]}" rebuild --directory=native "${nodedir[@]}" >"$log" 2>&1; then
  rm -f "$log"
  exit 0
fi
echo "lading: building native/ failed (see $log); gzip falls back to Node's zlib, mounts to mount(8)" >&2
tail -n 5 "$log" >&2
[ "$strict" = true ] && exit 1
exit 0

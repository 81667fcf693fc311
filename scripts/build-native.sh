#!/usr/bin/env bash
# npm's install step for Lading itself: builds the optional native addons in native/, each one its
# own node-gyp target built when its Debian library is installed (native/binding.gyp looks for the
# headers), so one missing library never disables another:
#   lading_gzip    libdeflate gzip members (native/gzip_member.c), from libdeflate-dev;
#   lading_inflate ISA-L's igzip streaming gzip decoder (native/inflate.c), from libisal-dev;
#   lading_mount   mount(2), umount2(2) and syncfs(2) for `lading run` (native/mount.c), no library.
# All are optional: without them (no library, no compiler, a failed build) Lading still works,
# compresses gzip with Node's zlib (slower, about 1.7% larger; src/io/native-gzip.ts), decodes gzip
# with Node's zlib (3-5x slower; src/io/native-gunzip.ts) and runs mount(8), umount(8) and
# `sync -f` (src/io/native-fs.ts), so a failure is a note here and never fails `npm install`.
# Strict only where the fast paths must be the ones tested: Lading's own CI (CI=true in a
# checkout, not a copy installed under node_modules/) or LADING_REQUIRE_NATIVE=1.
# test/install.test.ts runs this with CC=false and checks the install succeeds.
set -uo pipefail
cd "$(dirname "$0")/.."
strict=false
if [ "${LADING_REQUIRE_NATIVE:-}" = 1 ]; then strict=true
elif [ "${CI:-}" = true ] && [[ "$PWD" != */node_modules/* ]]; then strict=true; fi
log="native/build-native.log"
missing=()
[ -f /usr/include/libdeflate.h ] ||
  missing+=("libdeflate-dev is not installed: gzip layers will be compressed with Node's zlib (apt-get install libdeflate-dev, then npm rebuild, for the faster encoder)")
[ -f /usr/include/isa-l/igzip_lib.h ] ||
  missing+=("libisal-dev is not installed: gzip layers will be decoded with Node's zlib (apt-get install libisal-dev, then npm rebuild, for the faster decoder)")
for msg in "${missing[@]}"; do
  if [ "$strict" = true ]; then echo "lading: $msg" >&2; exit 1; fi
  echo "lading: note: $msg" >&2
done
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

#!/usr/bin/env bash
# Builds build/src/cli/lading.blob, the V8 start-up snapshot of the bundled CLI, with the Node on
# PATH (a snapshot only loads in the Node that made it), and lading.blob.node, the path of that
# Node, which bin/lading compares before it uses the snapshot. Run by `npm run build` (after
# scripts/bundle.mjs) and by npm's install step; without the bundle there is nothing to do.
# A failed build is a warning (bin/lading then runs build/src/cli/main.js) and never fails
# `npm install`; strict only in Lading's own CI (CI=true in a checkout, not under node_modules/)
# or with LADING_REQUIRE_SNAPSHOT=1. The library never uses the snapshot.
set -uo pipefail
strict=false
if [ "${LADING_REQUIRE_SNAPSHOT:-}" = 1 ]; then strict=true
elif [ "${CI:-}" = true ] && [[ "$(cd "$(dirname "$0")/.." && pwd)" != */node_modules/* ]]; then strict=true; fi
cd "$(dirname "$0")/../build/src/cli" 2>/dev/null || exit 0
[ -f lading.cjs ] || exit 0
node_bin="$(command -v node)"
rm -f lading.blob lading.blob.node
if out="$(node --snapshot-blob lading.blob.tmp --build-snapshot lading.cjs 2>&1)" && [ -s lading.blob.tmp ]; then
  mv lading.blob.tmp lading.blob
  printf '%s\n' "$node_bin" > lading.blob.node
  # The builder's own lines (its warm-up, src/cli/snapshot-entry.ts); Node's notes about
  # built-ins in snapshots are expected and left out.
  if own="$(printf '%s\n' "$out" | grep '^lading: ')"; then
    printf '%s\n' "$own" >&2
    [ "$strict" = true ] && exit 1
  fi
  exit 0
fi
rm -f lading.blob.tmp
echo "lading: building the start-up snapshot failed; lading will start without it (slower):" >&2
printf '%s\n' "$out" | tail -n 5 >&2
[ "$strict" = true ] && exit 1
exit 0

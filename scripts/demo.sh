#!/usr/bin/env bash
# The README's first Quick-start command: an image's life on a built-in example, end to end.
# Builds Lading if needed, then: create an image from a small folder, configure it, show it,
# validate it, copy it to docker-archive and oci-archive, read it back, unpack it to a bundle.
# Everything happens in a temporary directory that is removed at the end (KEEP=1 keeps it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
[ -f build/src/cli/lading.cjs ] && [ -z "$(find src -newer build/src/cli/lading.cjs -name '*.ts' -print -quit)" ] || npm run --silent build

work="$(mktemp -d "${TMPDIR:-/tmp}/lading-demo.XXXXXX")"
[ "${KEEP:-}" = 1 ] && echo "(keeping $work)" || trap 'rm -rf "$work"' EXIT
lading() { echo "\$ lading $*" | sed "s#$work#\$WORK#g"; "$repo/bin/lading" "$@"; echo; }

# A small folder to turn into an image.
mkdir -p "$work/site/app" "$work/site/etc"
printf '#!/bin/sh\necho "hello from a Lading image"\n' > "$work/site/app/hello.sh"
chmod 755 "$work/site/app/hello.sh"
printf 'greeting=hello\n' > "$work/site/etc/app.conf"
ln -s hello.sh "$work/site/app/run"

echo "== Create and edit an image in a new OCI layout"
lading init --layout "$work/images"
lading new --image "$work/images:demo"
lading insert --image "$work/images:demo" "$work/site" /
lading config --image "$work/images:demo" --config.cmd /app/run --config.env GREETING=hello \
  --config.label org.example.demo=true --author "Lading demo" --config.workingdir /app
lading ls --layout "$work/images"
lading stat --image "$work/images:demo"
lading validate --image "$work/images:demo"

echo "== Ship it: docker-archive (docker save format) and oci-archive, then read both back"
lading copy --quiet "oci:$work/images:demo" "docker-archive:$work/demo-docker.tar:example/demo:1.0"
lading copy --quiet "oci:$work/images:demo" "oci-archive:$work/demo-oci.tar:1.0"
lading inspect "docker-archive:$work/demo-docker.tar"
lading copy --quiet "docker-archive:$work/demo-docker.tar" "oci:$work/back:demo"
lading copy --quiet "oci-archive:$work/demo-oci.tar:1.0" "oci:$work/back:demo-oci"
lading validate --layout "$work/back"

echo "== Run it: unpack to an OCI runtime bundle (config.json + rootfs/)"
lading unpack --image "$work/back:demo" "$work/bundle"
echo "\$ find \$WORK/bundle/rootfs"; (cd "$work/bundle" && find rootfs | sort)
echo "\$ process in \$WORK/bundle/config.json:"
node -e 'const c=require(process.argv[1]); console.log(JSON.stringify({args:c.process.args, env:c.process.env, cwd:c.process.cwd}, null, 2))' "$work/bundle/config.json"
echo "demo complete"

#!/usr/bin/env bash
# The README's first Quick-start command: an image's life on a built-in example, end to end.
# Builds Lading if needed, then: create an image from a small folder, configure it, show it,
# validate it, build a second image on it from a Dockerfile, serve a registry and push both to it,
# pull one back, copy to docker-archive and oci-archive, read them back, unpack to a bundle.
# Everything happens in a temporary directory that is removed at the end (KEEP=1 keeps it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
[ -f build/src/cli/lading.cjs ] && [ -z "$(find src -newer build/src/cli/lading.cjs -name '*.ts' -print -quit)" ] || npm run --silent build

work="$(mktemp -d "${TMPDIR:-/tmp}/lading-demo.XXXXXX")"
server=
stop_server() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=; }
if [ "${KEEP:-}" = 1 ]; then echo "(keeping $work)"; trap stop_server EXIT; else trap 'stop_server; rm -rf "$work"' EXIT; fi
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

echo "== Build on it: a Dockerfile (no RUN step, so no runc is needed here)"
mkdir -p "$work/ctx"
printf 'served by a Lading registry\n' > "$work/ctx/motd"
printf '%s\n' "FROM oci:$work/images:demo" 'COPY motd /etc/motd' 'ENV STAGE=built' \
  'LABEL org.example.built=true' 'CMD ["/app/run", "--built"]' > "$work/ctx/Dockerfile"
lading build --progress plain -t "oci:$work/images:built" --cache-dir "$work/build-cache" "$work/ctx"
lading stat --image "$work/images:built"

echo "== Ship it: serve a registry (lading serve), push both images, pull one back"
"$repo/bin/lading" serve --root "$work/registry" --listen 127.0.0.1:0 > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q 'serving' "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's#.* at http://##p' "$work/serve.log" | head -n 1)
[ -n "$url" ] || { cat "$work/serve.log"; exit 1; }
echo "\$ lading serve --root \$WORK/registry --listen 127.0.0.1:0   # serving at $url"; echo
lading copy --quiet --dest-tls-verify=false "oci:$work/images:demo" "docker://$url/example/demo:1.0"
lading copy --quiet --dest-tls-verify=false "oci:$work/images:built" "docker://$url/example/demo:built"
lading list-tags --tls-verify=false "docker://$url/example/demo"
lading copy --quiet --src-tls-verify=false "docker://$url/example/demo:built" "oci:$work/pulled:built"
lading validate --layout "$work/registry/example/demo"
stop_server

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

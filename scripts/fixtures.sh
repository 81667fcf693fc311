#!/usr/bin/env bash
# scripts/fixtures.sh — builds the real Debian image fixtures that Lading's interoperability tests and
# benchmarks use. Cached OUTSIDE the repository; never commit its output.
#
# Usage:  bash scripts/fixtures.sh [--force] [--print]
#   --force  rebuild everything except the downloaded rootfs tarball (delete the cache dir to redo that)
#   --print  only print the paths (exit 1 if the fixtures are not built)
# Env:    LADING_FIXTURES      cache directory (default /var/tmp/lading-fixtures)
#         LADING_DEBIAN_MIRROR Debian mirror for debootstrap (default: the first bookworm source that apt
#                              is configured with in /etc/apt/sources.list{,.d/*}, else deb.debian.org)
#
# Needs (root, Debian bookworm): debootstrap umoci zstd attr libcap2-bin tar coreutils util-linux nodejs
#   apt-get install -y debootstrap umoci zstd attr libcap2-bin
# Runs in about a minute on a fresh machine (debootstrap is most of it); a rerun with the cache is
# instant (it checks a stamp and exits).
#
# What it makes, in $LADING_FIXTURES:
#   cache/bookworm-minbase.tar  `debootstrap --variant=minbase bookworm` as a plain tar (numeric ids, xattrs):
#                               the cache that makes rebuilds skip the download.
#   rootfs/                     that root filesystem extracted (about 200 MB, ~7k files). Read-only by
#                               convention: tests copy it, they do not change it.
#   layout/                     an OCI image layout written by umoci 0.4.7 (and this script), tags:
#     minbase       ONE tar+gzip layer holding the whole rootfs (umoci new + unpack + copy + repack);
#                   config: Cmd ["/bin/bash"], Env PATH=..., label org.lading.fixture=minbase.
#     layered       minbase + TWO more layers made by `umoci repack` (see layered-changes.txt for the
#                   exact list of paths): deleted directories (whiteouts), a directory replaced by a
#                   file and a file replaced by a directory, hardlinks (within the layer and to a file of
#                   a lower layer), symlinks (relative, absolute, dangling, to a directory),
#                   setuid/setgid/sticky modes, xattrs (user.* and security.capability), a mode-000
#                   file and a mode-000 directory with a file inside, a fifo, files owned by uid 1000 and
#                   uid/gid 70000, a modified file and a metadata-only change. Three layers in total.
#     minbase-zstd  the same image as minbase with its layer recompressed to tar+zstd (zstd CLI):
#                   same config (same diff_ids), new layer blob, manifest layer mediaType
#                   application/vnd.oci.image.layer.v1.tar+zstd. (umoci 0.4.7 cannot unpack zstd layers;
#                   skopeo reads the image.)
#   Notes on umoci's layers (tests comparing against umoci must expect them): when a directory becomes
#   a file, umoci writes the file entry FIRST and then `.wh.` entries UNDER the now-file path
#   (usr/share/common-licenses, opt/lading/to-replace); a file that becomes a directory gets no whiteout;
#   a new hardlink to a lower-layer file is written with the LOWER file as the hardlink entry
#   (usr/bin/dpkg -> opt/lading/dpkg-hardlink). Blobs are mode 0600.
#   layered-changes.txt         the changes made for each layered layer, one `layer<N> <kind> <path>` a line.
#   bundle/                     (work dir) the umoci bundle the layers were packed from; removed at the end.
#
# It prints KEY=VALUE lines (FIXTURES, ROOTFS, LAYOUT, ROOTFS_TAR) on stdout; logs go to stderr.
set -euo pipefail

FIXTURES_VERSION=2   # bump when the fixtures' contents change, so caches rebuild
FIX="${LADING_FIXTURES:-/var/tmp/lading-fixtures}"
ROOTFS_TAR="$FIX/cache/bookworm-minbase.tar"
STAMP="$FIX/.complete-v$FIXTURES_VERSION"

force=0
print_only=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print) print_only=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "fixtures.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

print_paths() {
  echo "FIXTURES=$FIX"
  echo "ROOTFS=$FIX/rootfs"
  echo "LAYOUT=$FIX/layout"
  echo "ROOTFS_TAR=$ROOTFS_TAR"
}

log() { echo "fixtures: $*" >&2; }

if [ "$print_only" = 1 ]; then
  [ -e "$STAMP" ] || { log "not built yet: run bash scripts/fixtures.sh"; exit 1; }
  print_paths
  exit 0
fi

mkdir -p "$FIX"
# One builder at a time: tests in parallel may all call this script.
exec 9>"$FIX/.lock"
flock 9

if [ "$force" = 0 ] && [ -e "$STAMP" ] && [ -d "$FIX/layout" ] && [ -d "$FIX/rootfs" ]; then
  print_paths
  exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap, chown, mknod, setcap)"; exit 1; }
for tool in debootstrap umoci zstd setfattr setcap tar node flock sha256sum; do
  command -v "$tool" >/dev/null || { log "missing $tool: apt-get install -y debootstrap umoci zstd attr libcap2-bin"; exit 1; }
done

# The mirror apt already uses: deb822 stanzas (URIs + Suites containing bookworm) or one-line entries.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
        }
        if (uris != "" && (" " suites " ") ~ / bookworm /) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i+1) == "bookworm") print $i; break } }' "$f"
  done
}
MIRROR="${LADING_DEBIAN_MIRROR:-$(find_mirror | head -n1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

# --- 1. the Debian root filesystem (cached as a tarball) ---------------------------------------------
mkdir -p "$FIX/cache"
if [ ! -s "$ROOTFS_TAR" ]; then
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  rm -rf "$FIX/debootstrap.tmp"
  debootstrap --variant=minbase bookworm "$FIX/debootstrap.tmp" "$MIRROR" >&2
  # debootstrap leaves the downloaded .debs in /var/cache/apt/archives; they are kept on purpose: they
  # make the layer the size the benchmarks are specified for (~200 MB unpacked, ~95 MB gzip) and give
  # it a realistic share of incompressible data.
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$FIX/debootstrap.tmp" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$FIX/debootstrap.tmp"
fi

extract_rootfs() { # DIR: a fresh copy of the rootfs
  mkdir -p "$1"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$1" -xpf "$ROOTFS_TAR"
}

rm -f "$FIX"/.complete-v*
rm -rf "$FIX/rootfs" "$FIX/rootfs.tmp" "$FIX/layout" "$FIX/layout.tmp" "$FIX/bundle"
log "extracting rootfs"
extract_rootfs "$FIX/rootfs.tmp"
mv "$FIX/rootfs.tmp" "$FIX/rootfs"

# --- 2. minbase: one gzip layer made by umoci -------------------------------------------------------
L="$FIX/layout.tmp"
B="$FIX/bundle"
export SOURCE_DATE_EPOCH=1700000000
log "umoci: minbase"
umoci init --layout "$L"
umoci new --image "$L:minbase"
umoci config --image "$L:minbase" \
  --config.cmd /bin/bash \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label org.lading.fixture=minbase \
  --history.created_by "lading fixtures.sh: config"
umoci unpack --image "$L:minbase" "$B" >/dev/null
extract_rootfs "$B/rootfs"
umoci repack --refresh-bundle --image "$L:minbase" \
  --history.created_by "debootstrap --variant=minbase bookworm" "$B"

# --- 3. layered: two more layers with every kind of change ------------------------------------------
CHANGES="$FIX/layered-changes.txt.tmp"
: >"$CHANGES"
R="$B/rootfs"
note() { echo "$1 $2 $3" >>"$CHANGES"; }

log "umoci: layered (layer 2)"
n=layer2
rm -rf "$R/usr/share/doc";                                  note $n deleted-dir /usr/share/doc
rm -rf "$R/var/lib/apt/lists";                              note $n deleted-dir /var/lib/apt/lists
rm -rf "$R/usr/share/common-licenses"                       # dir -> file
printf 'see /usr/share/doc\n' >"$R/usr/share/common-licenses"; note $n dir-to-file /usr/share/common-licenses
rm -f "$R/etc/hostname"                                     # file -> dir
mkdir "$R/etc/hostname"; echo lading >"$R/etc/hostname/name"; note $n file-to-dir /etc/hostname
mkdir -p "$R/opt/lading"
O="$R/opt/lading"
printf 'hardlinked content\n' >"$O/hardlink-a"
ln "$O/hardlink-a" "$O/hardlink-b";                         note $n hardlink /opt/lading/hardlink-b
ln "$R/usr/bin/dpkg" "$O/dpkg-hardlink";                    note $n hardlink-lower /opt/lading/dpkg-hardlink
ln -s ../../etc/passwd "$O/symlink-relative";               note $n symlink /opt/lading/symlink-relative
ln -s /etc/passwd "$O/symlink-absolute";                    note $n symlink-absolute /opt/lading/symlink-absolute
ln -s /nonexistent/target "$O/symlink-dangling";            note $n symlink-dangling /opt/lading/symlink-dangling
ln -s /usr/share "$O/symlink-dir";                          note $n symlink-dir /opt/lading/symlink-dir
printf '#!/bin/sh\necho setuid\n' >"$O/setuid";  chmod 4755 "$O/setuid"; note $n setuid /opt/lading/setuid
printf '#!/bin/sh\necho setgid\n' >"$O/setgid";  chmod 2755 "$O/setgid"; note $n setgid /opt/lading/setgid
printf '#!/bin/sh\necho both\n'   >"$O/setugid"; chmod 6750 "$O/setugid"; note $n setuid-setgid /opt/lading/setugid
mkdir "$O/sticky"; chmod 1777 "$O/sticky";                  note $n sticky-dir /opt/lading/sticky
printf 'xattr\n' >"$O/xattr-user"
setfattr -n user.lading.test -v hello "$O/xattr-user"
setfattr -n user.lading.other -v 0sAAECAw== "$O/xattr-user"; note $n xattr-user /opt/lading/xattr-user
cp "$R/usr/bin/true" "$O/cap-net-raw"
setcap cap_net_raw+ep "$O/cap-net-raw";                     note $n xattr-capability /opt/lading/cap-net-raw
printf 'secret\n' >"$O/mode000-file"; chmod 000 "$O/mode000-file"; note $n mode-000-file /opt/lading/mode000-file
mkdir "$O/mode000-dir"; printf 'inside\n' >"$O/mode000-dir/inner"; chmod 000 "$O/mode000-dir"
                                                            note $n mode-000-dir /opt/lading/mode000-dir
mkfifo "$O/fifo"; chmod 0640 "$O/fifo";                     note $n fifo /opt/lading/fifo
printf 'owned\n' >"$O/uid1000"; chown 1000:1000 "$O/uid1000"; note $n owner-1000 /opt/lading/uid1000
printf 'owned\n' >"$O/uid70000"; chown 70000:70000 "$O/uid70000"; note $n owner-70000 /opt/lading/uid70000
mkdir -p "$O/to-delete/sub"; echo x >"$O/to-delete/sub/file"; note $n added-dir /opt/lading/to-delete
mkdir -p "$O/to-replace"; echo x >"$O/to-replace/file";     note $n added-dir /opt/lading/to-replace
touch -h -d @1600000000 "$O"/* 2>/dev/null || true
umoci repack --refresh-bundle --image "$L:layered" \
  --history.created_by "lading fixtures.sh: layer 2 (whiteouts, links, modes, xattrs)" "$B"

log "umoci: layered (layer 3)"
n=layer3
rm -rf "$O/to-delete";                                      note $n deleted-dir /opt/lading/to-delete
rm -rf "$O/to-replace"; echo now-a-file >"$O/to-replace";   note $n dir-to-file /opt/lading/to-replace
rm -f "$O/hardlink-b"; mkdir "$O/hardlink-b"; echo x >"$O/hardlink-b/file"; note $n file-to-dir /opt/lading/hardlink-b
ln "$O/hardlink-a" "$O/hardlink-c";                         note $n hardlink-lower /opt/lading/hardlink-c
rm -rf "$R/var/cache/debconf";                              note $n deleted-dir /var/cache/debconf
rm -f "$R/etc/motd";                                        note $n deleted-file /etc/motd
printf 'modified by layer 3\n' >>"$R/etc/issue";            note $n modified /etc/issue
chmod 0600 "$R/etc/debian_version";                         note $n metadata /etc/debian_version
setfattr -n user.lading.layer -v three "$O/setuid";         note $n xattr-user /opt/lading/setuid
umoci repack --refresh-bundle --image "$L:layered" \
  --history.created_by "lading fixtures.sh: layer 3 (whiteouts of layer 2, type changes)" "$B"
rm -rf "$B"

# --- 4. minbase-zstd: the minbase layer recompressed with zstd -------------------------------------
log "zstd: minbase-zstd"
node --input-type=module - "$L" <<'EOF'
import { readFileSync, writeFileSync, renameSync, statSync, openSync, fsyncSync, closeSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
const dir = process.argv[2]
const blob = (d) => `${dir}/blobs/${d.replace(':', '/')}`
const sha256File = (f) => 'sha256:' + execFileSync('sha256sum', [f]).toString().split(' ')[0]
const putBytes = (bytes) => {
  const d = 'sha256:' + createHash('sha256').update(bytes).digest('hex')
  writeFileSync(blob(d), bytes)
  return { digest: d, size: bytes.length }
}
const index = JSON.parse(readFileSync(`${dir}/index.json`, 'utf8'))
const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'minbase')
const manifest = JSON.parse(readFileSync(blob(entry.digest), 'utf8'))
if (manifest.layers.length !== 1) throw new Error('minbase should have one layer')
const tmp = `${dir}/blobs/sha256/.zstd-tmp`
execFileSync('sh', ['-c', `gzip -dc < "$1" | zstd -q -3 -T2 -o "$2" -f`, 'sh', blob(manifest.layers[0].digest), tmp])
const fd = openSync(tmp, 'r'); fsyncSync(fd); closeSync(fd)
const digest = sha256File(tmp)
renameSync(tmp, blob(digest))
manifest.layers[0] = {
  ...manifest.layers[0],
  mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
  digest,
  size: statSync(blob(digest)).size,
}
const desc = putBytes(Buffer.from(JSON.stringify(manifest)))
index.manifests.push({
  ...entry,
  digest: desc.digest,
  size: desc.size,
  annotations: { ...entry.annotations, 'org.opencontainers.image.ref.name': 'minbase-zstd' },
})
writeFileSync(`${dir}/index.json.tmp`, JSON.stringify(index))
renameSync(`${dir}/index.json.tmp`, `${dir}/index.json`)
EOF

sync -f "$L" 2>/dev/null || sync
mv "$L" "$FIX/layout"
mv "$CHANGES" "$FIX/layered-changes.txt"
touch "$STAMP"
log "done: $(du -sh "$FIX/layout" | cut -f1) layout, tags: $(umoci ls --layout "$FIX/layout" | tr '\n' ' ')"
print_paths

#!/usr/bin/env bash
# scripts/conformance.sh [CONFIG...]: runs the OCI distribution-spec conformance suite
# (../shared/conformance/run.sh, see its README) against `lading serve` in each configuration,
# each on a fresh storage root and a free loopback port, prints the counts, and exits 1 if any
# configuration has a failure (or its server did not start), 0 otherwise. Where
# ../shared/conformance is absent (a clone of the project alone) it says so and exits 0.
#
# Configurations (all by default):
#   v1.1.1-automount   v1.1.1 suite, no auth, automatic cross-repository mount on (OCI_AUTOMATIC_CROSSMOUNT=1)
#   v1.1.1-nomount     v1.1.1 suite, no auth, --no-auto-mount (OCI_AUTOMATIC_CROSSMOUNT=0)
#   main               main suite, no auth
#   v1.1.1-basic       v1.1.1 suite, htpasswd basic auth (OCI_USERNAME/OCI_PASSWORD; the auth ones with OCI_AUTOMATIC_CROSSMOUNT=1)
#   main-basic         main suite, htpasswd basic auth
#   v1.1.1-token       v1.1.1 suite, bearer tokens from the built-in token endpoint
#   main-token         main suite, bearer tokens
# Needs a built tree (npm run build) and htpasswd (apache2-utils) for the auth configurations.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# ../shared/conformance beside the project (a worktree one level deeper looks one further up).
suite_dir=${LADING_CONFORMANCE_DIR:-}
if [ -z "$suite_dir" ]; then
  for d in "$here/../shared/conformance" "$here/../../shared/conformance"; do
    [ -f "$d/run.sh" ] && { suite_dir=$d; break; }
  done
fi
if [ -z "$suite_dir" ] || [ ! -f "$suite_dir/run.sh" ]; then
  echo "conformance: ../shared/conformance/run.sh is absent; skipping the OCI conformance suite"
  exit 0
fi
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(v1.1.1-automount v1.1.1-nomount main v1.1.1-basic main-basic v1.1.1-token main-token)

work=$(mktemp -d /tmp/lading-conformance-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
user=conformance pass=conformance-$RANDOM$RANDOM
failed=0

for cfg in "${configs[@]}"; do
  args=() env=()
  case $cfg in
    v1.1.1-automount) suite=v1.1.1 env=(OCI_AUTOMATIC_CROSSMOUNT=1) ;;
    v1.1.1-nomount) suite=v1.1.1 env=(OCI_AUTOMATIC_CROSSMOUNT=0) args=(--no-auto-mount) ;;
    main) suite=main ;;
    v1.1.1-basic|main-basic|v1.1.1-token|main-token)
      suite=${cfg%%-*}
      if ! command -v htpasswd >/dev/null; then echo "conformance: $cfg: htpasswd (apache2-utils) not installed"; failed=1; continue; fi
      htpasswd -Bbc "$work/htpasswd" "$user" "$pass" 2>/dev/null
      args=(--htpasswd "$work/htpasswd" --auth-mode "${cfg##*-}")
      env=(OCI_USERNAME=$user OCI_PASSWORD=$pass OCI_AUTOMATIC_CROSSMOUNT=1) ;;
    *) echo "conformance: unknown configuration $cfg"; exit 2 ;;
  esac
  root=$work/$cfg
  "$here/bin/lading" serve --root "$root/storage" --listen 127.0.0.1:0 --access-log "$root.access.log" "${args[@]}" > "$root.out" 2> "$root.err" &
  pid=$!
  url=
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$root.out" 2>/dev/null | head -n 1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "conformance: $cfg: lading serve did not start:"; cat "$root.err"; failed=1; pid=; continue
  fi
  # The main suite also checks the optional features Lading has: upload cancel (DELETE of a
  # session) and Docker-Content-Digest on blob and manifest responses. Not enabled: tag params
  # (?tag= on a manifest PUT, newer than distribution-spec v1.1) and sparse manifests (Lading
  # refuses a manifest naming blobs the repository lacks, MANIFEST_BLOB_UNKNOWN, as v1.1 allows).
  [ "$suite" = main ] && env+=(OCI_API_BLOBS_UPLOAD_CANCEL=true OCI_API_BLOBS_DIGEST_HEADER=true OCI_API_MANIFESTS_DIGEST_HEADER=true)
  out=$(env "${env[@]}" CONFORMANCE_SUITE=$suite bash "$suite_dir/run.sh" "$url" 2>&1)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
  printf '%s\n' "$out" | grep -E '^(FAILED|conformance: (suite says|ERROR))' | sed "s/^/[$cfg] /"
  last=$(printf '%s\n' "$out" | tail -n 1)
  echo "[$cfg] $last"
  case $last in
    "conformance: "*" passed, 0 failed, "*) ;;
    *) failed=1 ;;
  esac
  case $last in "conformance: 0 passed, "*) failed=1 ;; esac
  if [ -s "$root.err" ]; then echo "[$cfg] server stderr:"; head -n 20 "$root.err"; fi
done
[ "$failed" = 0 ] && echo "conformance: every configuration passed" || echo "conformance: FAILURES above"
exit "$failed"

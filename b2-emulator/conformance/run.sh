#!/usr/bin/env bash
# Checks b2-emulator against Backblaze's own clients: the b2 command-line tool and b2sdk,
# pinned below, installed into a venv under target/ (created once, reused after).
#
#   bash b2-emulator/conformance/run.sh
#
# Prints one line per check and "N passed, N failed"; exits non-zero when a check fails.
set -euo pipefail

B2_VERSION=4.8.0
B2SDK_VERSION=2.13.1

root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/conformance-venv"

if ! "$venv/bin/python" -c "import b2sdk, sys; from importlib.metadata import version as v; sys.exit(0 if v('b2sdk') == '$B2SDK_VERSION' and v('b2') == '$B2_VERSION' else 1)" 2>/dev/null; then
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "b2==$B2_VERSION" "b2sdk==$B2SDK_VERSION"
fi

cargo build --quiet -p b2-emulator --bin b2-emulator --manifest-path "$root/Cargo.toml"

data_dir="$(mktemp -d)"
out="$(mktemp)"
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$out" "$data_dir"' EXIT

# Two passes: everything in memory, then persisted in a data directory.
status=0
for store in memory data-dir; do
    args=(--port 0 --min-part-size 5000 --recommended-part-size 100000)
    [ "$store" = data-dir ] && args+=(--data-dir "$data_dir")
    "$target/debug/b2-emulator" "${args[@]}" >"$out" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        grep -qs '^B2_APPLICATION_KEY=' "$out" && break
        sleep 0.1
    done
    realm="$(sed -n 's/^B2_ENVIRONMENT=//p' "$out")"
    key_id="$(sed -n 's/^B2_APPLICATION_KEY_ID=//p' "$out")"
    key="$(sed -n 's/^B2_APPLICATION_KEY=//p' "$out")"
    [ -n "$realm" ] || { echo "emulator did not start:"; cat "$out"; exit 1; }
    echo "== $store"
    "$venv/bin/python" "$root/b2-emulator/conformance/driver.py" "$realm" "$key_id" "$key" "$venv/bin/b2" || status=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
done
exit "$status"

#!/usr/bin/env bash
# Benchmarks b2-emulator on loopback with curl as the client:
#   1. upload and download of a 1 GiB file (memory store), in GiB/s, beside what curl reaches
#      here into receivers that do only part of the work (bench/sink.rs) and the SHA1 rate;
#   2. small JSON calls (b2_list_buckets) per second, over kept-alive connections, and small
#      uploads per second into an empty bucket and into one holding 21,000 files;
#   3. peak RSS of the emulator while a 2 GiB file is uploaded to a --data-dir store.
#
#   bash b2-emulator/bench/run.sh
#
# Bounded: a fixed number of requests, loopback only; the emulators it starts are stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bench-emulator"
calls="${BENCH_CALLS:-20000}"
mkdir -p "$work"
cargo build --quiet --release -p b2-emulator --bin b2-emulator --manifest-path "$root/Cargo.toml"
bin="$target/release/b2-emulator"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work/data" "$work"/emulator-*.out "$work/calls.cfg" "$work/upload-reply.json" "$work/sink.port"
}
trap cleanup EXIT

start() { # start ARGS... ; sets url, key_id, key, pid
    local out="$work/emulator-$RANDOM.out"
    "$bin" --port 0 "$@" >"$out" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do grep -qs '^B2_APPLICATION_KEY=' "$out" && break; sleep 0.1; done
    url="$(sed -n 's/^B2_ENVIRONMENT=//p' "$out")"
    key_id="$(sed -n 's/^B2_APPLICATION_KEY_ID=//p' "$out")"
    key="$(sed -n 's/^B2_APPLICATION_KEY=//p' "$out")"
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

prepare() { # authorize, create a bucket, get an upload URL
    auth="$(curl -s -u "$key_id:$key" "$url/b2api/v4/b2_authorize_account")"
    token="$(echo "$auth" | json "['authorizationToken']")"
    account="$(echo "$auth" | json "['accountId']")"
    bucket_id="$(curl -s -H "Authorization: $token" -d "{\"accountId\":\"$account\",\"bucketName\":\"bench-$1\",\"bucketType\":\"allPrivate\"}" \
        "$url/b2api/v4/b2_create_bucket" | json "['bucketId']")"
    up="$(curl -s -H "Authorization: $token" -d "{\"bucketId\":\"$bucket_id\"}" "$url/b2api/v4/b2_get_upload_url")"
    upload_url="$(echo "$up" | json "['uploadUrl']")"
    upload_token="$(echo "$up" | json "['authorizationToken']")"
}

upload() { # upload FILE NAME SHA1 -> prints bytes/s
    curl -s -o "$work/upload-reply.json" -w '%{http_code} %{speed_upload}\n' \
        -H "Authorization: $upload_token" -H "X-Bz-File-Name: $2" -H "Content-Type: application/octet-stream" \
        -H "X-Bz-Content-Sha1: $3" -H "Expect:" -X POST -T "$1" "$upload_url"
}

gib() { python3 -c "print(f'{$1 / 2**30:.2f}')"; }

# 1. 1 GiB up and down, memory store; each figure is the median of three runs, each in a fresh
#    emulator (this machine's speeds vary from run to run).
file1="$work/one-gib.bin"
[ -f "$file1" ] || head -c $((1 << 30)) /dev/urandom >"$file1"
sha1="$(sha1sum "$file1" | cut -d' ' -f1)"
median() { sort -n | sed -n 2p; }
ups=() ; downs=() ; unverified=()
for run in 1 2 3; do
    start
    prepare "one$run"
    read -r code speed < <(upload "$file1" big.bin "$sha1")
    [ "$code" = 200 ] || { echo "upload failed: $code"; cat "$work/upload-reply.json"; exit 1; }
    ups+=("$speed")
    read -r code speed < <(curl -s -o /dev/null -w '%{http_code} %{speed_download}\n' -H "Authorization: $token" "$url/file/bench-one$run/big.bin")
    [ "$code" = 200 ] || { echo "download failed: $code"; exit 1; }
    downs+=("$speed")
    if [ "$run" = 1 ]; then
        # Check the bytes once (not timed: writing 1 GiB to disk would be measured too).
        curl -s -H "Authorization: $token" "$url/file/bench-one1/big.bin" | cmp -s "$file1" - || { echo "downloaded bytes differ"; exit 1; }
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
# The same upload with "do_not_verify": B2 then computes no SHA1, and neither does the emulator.
for run in 1 2 3; do
    start
    prepare "unverified$run"
    read -r code speed < <(upload "$file1" unverified.bin do_not_verify)
    [ "$code" = 200 ] || { echo "unverified upload failed: $code"; exit 1; }
    unverified+=("$speed")
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
up_speed="$(printf '%s\n' "${ups[@]}" | median)"
down_speed="$(printf '%s\n' "${downs[@]}" | median)"
unverified_speed="$(printf '%s\n' "${unverified[@]}" | median)"
echo "upload 1 GiB (SHA1 verified):    $(gib "$up_speed") GiB/s"
echo "upload 1 GiB (do_not_verify):    $(gib "$unverified_speed") GiB/s"
echo "download 1 GiB:                  $(gib "$down_speed") GiB/s"

# What curl can send here, into receivers that do only part of an upload server's work
# (bench/sink.rs, one thread each): discard the bytes; compute their SHA1 as any verifying server
# must; keep them in fresh memory as any in-memory store must; both. Same file, same curl.
cargo build --quiet --release -p b2-emulator --examples --manifest-path "$root/Cargo.toml"
sink_speed() { # sink_speed FLAGS... -> median bytes/s of three uploads
    local port_file="$work/sink.port" speeds=() reply speed
    "$target/release/examples/bench_sink" "$@" >"$port_file" &
    local sink_pid=$!
    pids+=("$sink_pid")
    for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.1; done
    for _ in 1 2 3; do
        read -r reply speed < <(curl -s -w ' %{speed_upload}\n' -H "Expect:" -X POST -T "$file1" "http://127.0.0.1:$(cat "$port_file")/sink")
        case "$reply" in *'"contentLength":1073741824'*) ;; *) echo "sink reply: $reply" >&2; exit 1 ;; esac
        speeds+=("$speed")
    done
    kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
    printf '%s\n' "${speeds[@]}" | median
}
echo "curl into a receiver that only discards:        $(gib "$(sink_speed)") GiB/s"
echo "curl into a receiver that computes SHA1:        $(gib "$(sink_speed --sha1)") GiB/s"
echo "curl into a receiver that keeps bytes:          $(gib "$(sink_speed --keep)") GiB/s"
echo "curl into a receiver that computes SHA1, keeps: $(gib "$(sink_speed --sha1 --keep)") GiB/s"
read -r rate secs _ < <("$target/release/examples/bench_sha1_rate")
echo "SHA1 on one core (sha1 crate): $rate GiB/s ($secs s of CPU per GiB)"

# 2. Small JSON calls per second: curl --parallel over kept-alive connections.
start
prepare calls
cfg="$work/calls.cfg"
{
    echo "header = \"Authorization: $token\""
    echo "data = \"{\\\"accountId\\\":\\\"$account\\\"}\""
    for _ in $(seq 1 "$calls"); do
        echo "url = \"$url/b2api/v4/b2_list_buckets\""
        echo "output = \"/dev/null\""
    done
} >"$cfg"
t0="$(date +%s.%N)"
curl -s --no-progress-meter --parallel --parallel-max 8 -K "$cfg"
t1="$(date +%s.%N)"
python3 -c "print(f'small JSON calls: {$calls / ($t1 - $t0):.0f}/s ($calls calls of b2_list_buckets)')"

# 2b. Small uploads stay as fast in a full bucket as in an empty one: 1,000 uploads of 1 KiB
#     (one connection, one upload URL, one after another) into an empty bucket, then 1,000 more
#     after 20,000 others; memory store, then a data directory.
small="$work/one-kib.bin"
[ -f "$small" ] || head -c 1024 /dev/urandom >"$small"
small_sha1="$(sha1sum "$small" | cut -d' ' -f1)"
uploads() { # uploads FIRST COUNT -> files/s; COUNT uploads named s<FIRST>.. over one connection
    local cfg="$work/uploads.cfg" i
    {
        for i in $(seq "$1" $(($1 + $2 - 1))); do
            [ "$i" = "$1" ] || echo "next"
            echo "url = \"$upload_url\""
            echo "upload-file = \"$small\""
            echo "request = POST"
            echo "output = /dev/null"
            echo "write-out = \"%{http_code}\\n\""
            echo "header = \"Authorization: $upload_token\""
            echo "header = \"X-Bz-File-Name: s$i\""
            echo "header = \"Content-Type: application/octet-stream\""
            echo "header = \"X-Bz-Content-Sha1: $small_sha1\""
            echo "header = \"Expect:\""
        done
    } >"$cfg"
    local t0 t1 codes
    t0="$(date +%s.%N)"
    codes="$(curl -s -K "$cfg" | sort | uniq -c | tr -s ' ')"
    t1="$(date +%s.%N)"
    [ "$codes" = " $2 200" ] || { echo "uploads failed: $codes" >&2; exit 1; }
    python3 -c "print(f'{$2 / ($t1 - $t0):.0f}')"
}
for store in memory data; do
    if [ "$store" = data ]; then rm -rf "$work/data"; start --data-dir "$work/data"; else start; fi
    prepare "small-$store"
    first="$(uploads 0 1000)"
    uploads 1000 20000 >/dev/null
    later="$(uploads 21000 1000)"
    echo "small uploads ($store store): $first/s into an empty bucket, $later/s after 21,000 files"
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
rm -rf "$work/data" "$work/uploads.cfg"

# 3. Peak RSS while uploading 2 GiB to a data directory.
file2="$work/two-gib.bin"
[ -f "$file2" ] || { cat "$file1" "$file1" >"$file2"; }
sha2="$(sha1sum "$file2" | cut -d' ' -f1)"
rm -rf "$work/data"
start --data-dir "$work/data"
prepare two
read -r code _ < <(upload "$file2" two.bin "$sha2")
[ "$code" = 200 ] || { echo "2 GiB upload failed: $code"; cat "$work/upload-reply.json"; exit 1; }
rss_kib="$(sed -n 's/^VmHWM:\s*\([0-9]*\) kB/\1/p' "/proc/$pid/status")"
echo "peak RSS, 2 GiB upload to --data-dir: $((rss_kib / 1024)) MiB"
[ "$rss_kib" -lt $((100 * 1024)) ] || { echo "peak RSS over 100 MiB"; exit 1; }

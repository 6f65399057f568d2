#!/usr/bin/env bash
# Benchmarks the three adapters (b2-tokio, b2-async-std, b2-blocking) against a local b2-emulator
# on loopback (release builds), beside rclone and the B2 CLI, run by hand:
#
#   bash bench/run.sh            # memory, then speed
#   bash bench/run.sh memory     # peak RSS of each adapter: 2 GiB up from a path, from a pipe, down
#   bash bench/run.sh speed      # the three adapters, rclone and the B2 CLI: 1 GiB and 1,000 x 64 KiB
#   BENCH_ROUNDS=5 bash bench/run.sh speed   # rounds of the speed part (default 3; median shown)
#   BENCH_ADAPTERS="tokio blocking" bash bench/run.sh   # a subset of the adapters
#
# It installs what it needs, quietly and idempotently: rclone from the Debian archive
# (apt-get) and the B2 command-line tool (PyPI `b2`, pinned below) in a venv under
# target/bench/. Data files go to $BENCH_DIR (default /tmp/b2-bench), never into the
# repository; about 9 GiB of disk is used. Every emulator started is stopped on exit.
# Not part of `cargo test`: these are measurements, not tests.
set -euo pipefail

B2_CLI_VERSION="4.8.0"   # PyPI `b2`, pinned
PART_SIZE=100000000      # 100 MB, B2's recommended part size
CONCURRENCY=4            # parts in flight / files at once / download streams, for every tool
ADAPTERS="${BENCH_ADAPTERS:-tokio async-std blocking}"   # b2-bench --adapter values

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="${BENCH_DIR:-/tmp/b2-bench}"
logs="$work/logs"
what="${1:-all}"
case "$what" in all | memory | speed) ;; *) echo "usage: $0 [all|memory|speed]" >&2; exit 2 ;; esac
mkdir -p "$work" "$logs"

say() { echo "$*" >&2; }

# --- Tools --------------------------------------------------------------------------------
say "building b2-emulator and b2-bench (release)"
cargo build --quiet --release -p b2-emulator -p b2-bench --manifest-path "$root/Cargo.toml"
emulator_bin="$target/release/b2-emulator"
bench_bin="$target/release/b2-bench"

if [ "$what" != memory ]; then
    if ! command -v rclone >/dev/null; then
        say "installing rclone (apt-get)"
        sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
        $sudo_ apt-get install -y -qq rclone >"$logs/apt.log" 2>&1 \
            || { $sudo_ apt-get update -qq >>"$logs/apt.log" 2>&1 && $sudo_ apt-get install -y -qq rclone >>"$logs/apt.log" 2>&1; }
    fi
    venv="$target/bench/venv"
    if [ "$("$venv/bin/b2" version 2>/dev/null | sed -n 's/.*tool, version \([^ ]*\).*/\1/p')" != "$B2_CLI_VERSION" ]; then
        say "installing b2==$B2_CLI_VERSION in $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "b2==$B2_CLI_VERSION" >"$logs/pip.log" 2>&1
    fi
    b2_cli="$venv/bin/b2"
fi

# --- Data (generated once, reused) ----------------------------------------------------------
make_file() { # make_file PATH MIB
    if [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" != $(($2 << 20)) ]; then
        say "writing $2 MiB of random data to $1"
        head -c $(($2 << 20)) /dev/urandom >"$1.tmp" && mv "$1.tmp" "$1"
    fi
}
make_small_files() { # 1,000 files of 64 KiB in $work/small
    if [ "$(find "$work/small" -type f -size 64k 2>/dev/null | wc -l)" != 1000 ]; then
        say "writing 1,000 files of 64 KiB to $work/small"
        rm -rf "$work/small" && mkdir -p "$work/small"
        head -c $((1000 << 16)) /dev/urandom | split -b 65536 -a 4 -d - "$work/small/f"
    fi
}

# --- Emulators ------------------------------------------------------------------------------
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work/data" "$work/out"
}
trap cleanup EXIT

start_emulator() { # start_emulator ARGS... ; sets url, key_id, key
    local out="$logs/emulator-$(date +%s%N).out"
    "$emulator_bin" --port 0 "$@" >"$out" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do grep -q '^B2_APPLICATION_KEY=' "$out" && break; sleep 0.1; done
    url="$(sed -n 's/^B2_ENVIRONMENT=//p' "$out")"
    key_id="$(sed -n 's/^B2_APPLICATION_KEY_ID=//p' "$out")"
    key="$(sed -n 's/^B2_APPLICATION_KEY=//p' "$out")"
    [ -n "$key" ] || { say "the emulator did not start:"; cat "$out" >&2; exit 1; }
    export B2_REALM="$url" B2_ENVIRONMENT="$url" B2_APPLICATION_KEY_ID="$key_id" B2_APPLICATION_KEY="$key"
}

machine() {
    local cpu mem
    cpu="$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
    mem="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r); $(rustc --version)."
}

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; } # field NAME < "a=1 b=2"

# --- 1. Memory ------------------------------------------------------------------------------
# Each adapter in turn against one emulator that streams to disk (--data-dir): 2 GiB uploaded
# from a path, the same bytes from a pipe, then downloaded into a file; both uploads are then
# downloaded again (untimed) and compared with the source.
memory_results="$work/memory.tsv"
memory() {
    make_file "$work/two-gib.bin" 2048
    rm -rf "$work/data" "$work/out" && mkdir -p "$work/out"
    start_emulator --data-dir "$work/data"
    "$bench_bin" bucket bench-memory >/dev/null || { say "cannot create the bucket"; return 1; }
    local flags=(--part-size "$PART_SIZE" --in-flight "$CONCURRENCY" --concurrency "$CONCURRENCY")
    local pipe_limit=$(((CONCURRENCY * PART_SIZE + (64 << 20)) / 1024)) ok=0 adapter line a
    : >"$memory_results"

    record() { # record ADAPTER WORKLOAD LIMIT_KIB LINE
        printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(echo "$4" | field peak_rss_kib)" \
            "$(echo "$4" | field seconds)" >>"$memory_results"
    }

    for adapter in $ADAPTERS; do
        a=(--adapter "$adapter")
        say "memory: b2-$adapter"
        line="$("$bench_bin" "${a[@]}" upload-path bench-memory "$adapter/path.bin" "$work/two-gib.bin" "${flags[@]}")" \
            || { say "$adapter: upload from a path failed"; ok=1; continue; }
        record "$adapter" "upload from a path" $((128 << 10)) "$line"
        line="$(cat "$work/two-gib.bin" | "$bench_bin" "${a[@]}" upload-stdin bench-memory "$adapter/pipe.bin" "${flags[@]}")" \
            || { say "$adapter: upload from a pipe failed"; ok=1; continue; }
        [ "$(echo "$line" | field bytes)" = $((2048 << 20)) ] || { say "$adapter: pipe upload stored the wrong length: $line"; exit 1; }
        record "$adapter" "upload from a pipe" "$pipe_limit" "$line"
        line="$("$bench_bin" "${a[@]}" download bench-memory "$adapter/path.bin" "$work/out/two-gib.bin" "${flags[@]}")" \
            || { say "$adapter: download failed"; ok=1; continue; }
        record "$adapter" "download into a file" $((64 << 10)) "$line"
        cmp -s "$work/two-gib.bin" "$work/out/two-gib.bin" || { say "$adapter: downloaded bytes differ"; exit 1; }
        # The pipe upload's bytes, checked by a second (untimed) download.
        "$bench_bin" "${a[@]}" download bench-memory "$adapter/pipe.bin" "$work/out/pipe.bin" "${flags[@]}" >/dev/null \
            || { say "$adapter: download of the pipe upload failed"; ok=1; continue; }
        cmp -s "$work/two-gib.bin" "$work/out/pipe.bin" || { say "$adapter: pipe upload: downloaded bytes differ"; exit 1; }
        rm -f "$work/out/two-gib.bin" "$work/out/pipe.bin"
    done
    kill "${pids[-1]}" 2>/dev/null || true
    rm -rf "$work/out" "$work/data"

    echo
    echo "### Peak RSS (2 GiB, $((PART_SIZE / 1000000)) MB parts, $CONCURRENCY in flight / $CONCURRENCY streams, --data-dir emulator)"
    echo
    python3 - "$memory_results" "$ADAPTERS" <<'PY' || ok=1
import sys
rows, adapters, speeds = {}, sys.argv[2].split(), {}
for line in open(sys.argv[1]):
    adapter, workload, limit, rss, secs = line.rstrip("\n").split("\t")
    rows.setdefault((workload, int(limit)), {})[adapter] = int(rss)
    speeds.setdefault(workload, {})[adapter] = 2048 / float(secs) if float(secs) > 0 else 0
over = 0
print("| workload | limit | " + " | ".join(f"b2-{a}" for a in adapters) + " |")
print("|---|---|" + "---|" * len(adapters))
for (workload, limit), by in rows.items():
    cells = []
    for a in adapters:
        if a not in by:
            cells.append("failed")
            continue
        cell = f"{by[a] // 1024} MiB"
        if by[a] >= limit:
            cell = f"**{cell} (over)**"
            over += 1
        cells.append(cell)
    print(f"| {workload} | {limit // 1024} MiB | " + " | ".join(cells) + " |")
print()
print("Throughput of the same runs (MiB/s, one run each, disk-backed emulator): " + "; ".join(
    f"{w}: " + ", ".join(f"b2-{a} {by[a]:.0f}" for a in adapters if a in by) for w, by in speeds.items()) + ".")
if over:
    print(f"{over} memory limit(s) exceeded", file=sys.stderr)
    sys.exit(1)
PY
    return "$ok"
}

# --- 2. Speed -------------------------------------------------------------------------------
# Each round starts a fresh in-memory emulator and runs every tool through every workload, the
# tools interleaved so that load from elsewhere on the machine falls on all of them alike; the
# table gives the median of the rounds and their range.
results="$work/results.tsv"
timed() { # timed ROUND TOOL WORKLOAD UNIT AMOUNT CMD... ; runs CMD, appends a result line
    local round="$1" tool="$2" workload="$3" unit="$4" amount="$5"
    shift 5
    local log="$logs/$tool-${workload// /_}-$round.log" t0 t1 rss
    t0="$(date +%s.%N)"
    if /usr/bin/time -f '%M' -o "$log.rss" "$@" >"$log" 2>&1; then
        t1="$(date +%s.%N)"
        rss="$(tail -1 "$log.rss")"
        printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$workload" "$unit" \
            "$(awk -v a="$amount" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", a / (t1 - t0) }')" \
            "$rss" >>"$results"
        return 0
    fi
    printf '%s\t%s\t%s\tfailed\t%s\n' "$tool" "$workload" "$unit" "${log#"$work"/}" >>"$results"
    say "$tool: $workload failed; see $log"
    return 1
}

verify() { # verify TOOL: the downloaded bytes equal the sources
    cmp -s "$work/one-gib.bin" "$work/out/$1-big.bin" || { say "$1: 1 GiB download differs"; return 1; }
    diff -rq "$work/small" "$work/out/$1-small" >/dev/null || { say "$1: small-file downloads differ"; return 1; }
}

speed_round() { # speed_round N
    local i="$1" b=bench-speed big="$work/one-gib.bin" out="$work/out" n=$CONCURRENCY ok=0
    rm -rf "$out" && mkdir -p "$out"
    start_emulator
    "$bench_bin" bucket "$b" >/dev/null || { say "cannot create the bucket"; return 1; }

    # The adapters: this repository's clients, through bench/src/main.rs.
    local f=(--part-size "$PART_SIZE" --in-flight "$n" --concurrency "$n") adapter t
    for adapter in $ADAPTERS; do
        t="b2-$adapter"
        local a=("$bench_bin" --adapter "$adapter")
        timed "$i" "$t" "upload 1 GiB" MiB/s 1024 "${a[@]}" upload-path "$b" "$t/big.bin" "$big" "${f[@]}" || ok=1
        timed "$i" "$t" "download 1 GiB" MiB/s 1024 "${a[@]}" download "$b" "$t/big.bin" "$out/$t-big.bin" "${f[@]}" || ok=1
        timed "$i" "$t" "upload 1,000 x 64 KiB" files/s 1000 "${a[@]}" upload-dir "$b" "$t/small/" "$work/small" "${f[@]}" || ok=1
        timed "$i" "$t" "download 1,000 x 64 KiB" files/s 1000 "${a[@]}" download-prefix "$b" "$t/small/" "$out/$t-small" "${f[@]}" || ok=1
        verify "$t" || ok=1
        rm -rf "$out/$t-big.bin" "$out/$t-small"
    done

    # rclone: its b2 backend pointed at the emulator; an empty config file, the remote from env.
    : >"$work/rclone.conf"
    export RCLONE_CONFIG_EMU_TYPE=b2 RCLONE_CONFIG_EMU_ACCOUNT="$key_id" RCLONE_CONFIG_EMU_KEY="$key" \
        RCLONE_CONFIG_EMU_ENDPOINT="$url"
    local r=(rclone --config "$work/rclone.conf" --transfers "$n" --checkers "$n" \
        --b2-chunk-size "${PART_SIZE}B" --b2-upload-cutoff 200Mi \
        --multi-thread-streams "$n" --multi-thread-cutoff 250Mi)
    timed "$i" rclone "upload 1 GiB" MiB/s 1024 "${r[@]}" copyto "$big" "emu:$b/rclone/big.bin" || ok=1
    timed "$i" rclone "download 1 GiB" MiB/s 1024 "${r[@]}" copyto "emu:$b/rclone/big.bin" "$out/rclone-big.bin" || ok=1
    timed "$i" rclone "upload 1,000 x 64 KiB" files/s 1000 "${r[@]}" copy "$work/small" "emu:$b/rclone/small" || ok=1
    timed "$i" rclone "download 1,000 x 64 KiB" files/s 1000 "${r[@]}" copy "emu:$b/rclone/small" "$out/rclone-small" || ok=1
    verify rclone || ok=1
    rm -rf "$out/rclone-big.bin" "$out/rclone-small"

    # The B2 CLI: keys and realm from B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_ENVIRONMENT
    # (authorized in memory on each run); its account info kept out of the home directory.
    export B2_ACCOUNT_INFO="$work/b2_account_info"
    timed "$i" b2-cli "upload 1 GiB" MiB/s 1024 "$b2_cli" file upload --no-progress --threads "$n" \
        --min-part-size "$PART_SIZE" "$b" "$big" b2-cli/big.bin || ok=1
    timed "$i" b2-cli "download 1 GiB" MiB/s 1024 "$b2_cli" file download --no-progress --threads "$n" \
        "b2://$b/b2-cli/big.bin" "$out/b2-cli-big.bin" || ok=1
    timed "$i" b2-cli "upload 1,000 x 64 KiB" files/s 1000 "$b2_cli" sync --no-progress --threads "$n" \
        "$work/small" "b2://$b/b2-cli/small" || ok=1
    timed "$i" b2-cli "download 1,000 x 64 KiB" files/s 1000 "$b2_cli" sync --no-progress --threads "$n" \
        "b2://$b/b2-cli/small" "$out/b2-cli-small" || ok=1
    verify b2-cli || ok=1

    kill "${pids[-1]}" 2>/dev/null || true
    rm -rf "$out"
    return "$ok"
}

speed() {
    local rounds="${BENCH_ROUNDS:-3}" ok=0
    make_file "$work/one-gib.bin" 1024
    make_small_files
    : >"$results"
    for i in $(seq 1 "$rounds"); do
        say "speed round $i of $rounds"
        speed_round "$i" || ok=1
    done
    echo
    echo "### Speed on loopback (emulator in memory; $CONCURRENCY-way concurrency; $((PART_SIZE / 1000000)) MB parts)"
    echo
    echo "Median of $rounds rounds (range in brackets), then the largest peak RSS of the rounds."
    echo
    python3 - "$results" <<'PY'
import sys
workloads = ["upload 1 GiB", "download 1 GiB", "upload 1,000 x 64 KiB", "download 1,000 x 64 KiB"]
rows = {}
for line in open(sys.argv[1]):
    tool, workload, unit, value, rss = line.rstrip("\n").split("\t")
    cell = rows.setdefault(tool, {}).setdefault(workload, (unit, [], []))
    if value == "failed":
        cell[2].append(rss)
    else:
        cell[1].append((float(value), int(rss)))
names = {"b2-cli": "B2 CLI"}
print("| tool | " + " | ".join(w.replace(" x ", " × ") for w in workloads) + " |")
print("|---|" + "---|" * len(workloads))
for tool, by in rows.items():
    cells = []
    for w in workloads:
        unit, ok, failed = by.get(w, ("", [], ["not run"]))
        if failed:
            cells.append(f"failed ({', '.join(failed)})")
            continue
        speeds = sorted(v for v, _ in ok)
        mid = len(speeds) // 2
        median = speeds[mid] if len(speeds) % 2 else (speeds[mid - 1] + speeds[mid]) / 2
        spread = f" ({speeds[0]:,.0f}–{speeds[-1]:,.0f})" if len(speeds) > 1 else ""
        rss = max(r for _, r in ok) // 1024
        cells.append(f"{median:,.0f} {unit}{spread}, {rss} MiB")
    print(f"| {names.get(tool, tool)} | " + " | ".join(cells) + " |")
PY
    echo
    echo "Versions: b2-tokio, b2-async-std, b2-blocking $(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)," \
        "$(rclone version 2>/dev/null | head -1), $("$b2_cli" version 2>/dev/null | sed 's/ command line tool, version/ CLI/')."
    return "$ok"
}

status=0
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$what" = all ] || [ "$what" = memory ]; then memory || status=1; fi
if [ "$what" = all ] || [ "$what" = speed ]; then speed || status=1; fi
echo
machine
echo "Load average (1, 5, 15 min): $load_before before the runs, $(cut -d' ' -f1-3 /proc/loadavg) after."
exit "$status"

#!/usr/bin/env bash
# Measures the release build of examples/wait_for against the targets of issue 4:
#   - stripped size with the `tcp` feature alone          (target: at most 1.5 MiB)
#   - notice latency against a port that opens at a random moment, over RUNS runs
#                                                          (target: 30 ms median, 60 ms max)
#   - peak RSS (VmHWM) while waiting                       (target: at most 2 MiB)
#   - start to exit when the port is already open          (target: at most 1.5 ms)
#
# Usage: scripts/measure-wait-for.sh [RUNS]   (default 20)
# Needs python3; uses hyperfine for start-to-exit when installed, a loop otherwise.
# Honours CARGO_TARGET_DIR; FEATURES overrides the feature list (default: tcp); TARGET builds
# for another target, e.g. TARGET=x86_64-unknown-linux-musl for the static binary an init
# container image (FROM scratch) ships: no libc.so to map, so about 1 MiB less RSS.
set -euo pipefail

runs="${1:-20}"
features="${FEATURES:-tcp}"
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

build=(cargo build --quiet --release --example wait_for --no-default-features --features "$features")
bin="$target_dir/release/examples/wait_for"
if [ -n "${TARGET:-}" ]; then
    build+=(--target "$TARGET")
    bin="$target_dir/$TARGET/release/examples/wait_for"
    # Examples build the dev-dependencies too; criterion's `alloca` compiles a little C, and
    # a musl target has no musl-gcc here: the host gcc does for that file.
    target_env="CC_${TARGET//-/_}"
    export "$target_env"="${!target_env:-gcc}"
fi
"${build[@]}"

size=$(stat -c %s "$bin")
printf 'binary: %s (features: %s)\n' "$bin" "$features"
printf 'size: %d bytes = %.2f MiB\n' "$size" "$(echo "$size / 1048576" | bc -l)"

python3 - "$bin" "$runs" <<'PY'
import os, random, socket, statistics, subprocess, sys, time

binary, runs = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, INITKIT_LOG="error")

def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

notices, peaks = [], []
for _ in range(runs):
    # Bound, not listening: connections are refused until listen().
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--timeout", "30s", f"127.0.0.1:{port}"], env=env)
    # Open at a random moment, after the wait has settled into polling.
    time.sleep(random.uniform(0.2, 0.7))
    peaks.append(status_kib(proc.pid, "VmHWM"))
    opened = time.monotonic()
    sock.listen(16)
    code = proc.wait()
    notices.append((time.monotonic() - opened) * 1000)
    sock.close()
    if code != 0:
        sys.exit(f"wait_for exited {code}")

print(f"notice latency over {runs} runs (listen() to process exit): "
      f"median {statistics.median(notices):.1f} ms, max {max(notices):.1f} ms, "
      f"min {min(notices):.1f} ms")
print(f"peak RSS while waiting (VmHWM): median {statistics.median(peaks)} KiB, "
      f"max {max(peaks)} KiB = {max(peaks) / 1024:.2f} MiB")
PY

# Start to exit against a port that is already open.
port_file=$(mktemp)
python3 - "$port_file" <<'PY' &
import socket, sys, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    c.close()
PY
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$port_file"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")

export INITKIT_LOG=error
if command -v hyperfine >/dev/null; then
    json=$(mktemp)
    hyperfine --shell=none --warmup 30 --runs 500 --style none --export-json "$json" \
        "$bin 127.0.0.1:$port" "/bin/true"
    python3 - "$json" <<'PY'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = [x * 1000 for x in r["times"]]
    print(f"start to exit: {r['command']}: median {statistics.median(t):.2f} ms, "
          f"mean {statistics.mean(t):.2f} ms, min {min(t):.2f} ms over {len(t)} runs")
PY
    rm -f "$json"
else
    n=300
    start=$(date +%s%N)
    for _ in $(seq "$n"); do "$bin" "127.0.0.1:$port"; done
    end=$(date +%s%N)
    echo "start to exit (port open): mean $(( (end - start) / n / 1000 )) us over $n runs (includes the shell's fork/exec)"
fi

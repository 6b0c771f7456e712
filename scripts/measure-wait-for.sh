#!/usr/bin/env bash
# Measures the release build of examples/wait_for against the targets of issue 4:
#   - stripped size with the `tcp` feature alone          (target: at most 1.5 MiB)
#   - notice latency against a port that opens at a random moment, over RUNS runs: early (0.2 to
#     0.7 s after the start, a server started together with its client) and late (3 to 4 s)
#                                          (issue 15's target: 15 ms median, 40 ms max, early)
#   - CPU per second waited over a 10 s wait for a port that stays closed (user + system time
#     of the process from wait4, median of 3)           (issue 15's target: at most 5 ms)
#   - peak RSS (VmHWM) while waiting                       (target: at most 2 MiB)
#   - start to exit when the port is already open          (target: at most 1.5 ms)
#
# Usage: scripts/measure-wait-for.sh [RUNS]   (default 20)
# Needs python3; uses hyperfine for start-to-exit when installed, a loop otherwise. Latency and
# CPU are measured side by side with wait-for-them (crates.io `wait-for-them`, which polls every
# 100 ms) when it is found: $WAIT_FOR_THEM, else target/test-tools/wait-for-them/bin (where
# `cargo install --locked wait-for-them --root target/test-tools/wait-for-them` puts it), else PATH.
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

wait_for_them="${WAIT_FOR_THEM:-$target_dir/test-tools/wait-for-them/bin/wait-for-them}"
[ -x "$wait_for_them" ] || wait_for_them=$(command -v wait-for-them || true)

python3 - "$bin" "$runs" "$wait_for_them" <<'PY'
import os, random, socket, statistics, subprocess, sys, time

binary, runs, others = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = dict(os.environ, INITKIT_LOG="error")

# How each tool is told to wait for `port`, at most `seconds`.
tools = {"wait_for": lambda port, seconds: [binary, "--timeout", f"{seconds}s", f"127.0.0.1:{port}"]}
if others:
    tools["wait-for-them"] = lambda port, seconds: [
        others, "-s", "-t", str(int(seconds * 1000)), f"127.0.0.1:{port}"]

def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def closed_port():
    # Bound, not listening: connections are refused until listen().
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]

def notice(command, low, high, peaks=None):
    """listen() to process exit, for a port that opens between `low` and `high` s in."""
    sock, port = closed_port()
    proc = subprocess.Popen(command(port, 30), env=env)
    time.sleep(random.uniform(low, high))
    if peaks is not None:
        peaks.append(status_kib(proc.pid, "VmHWM"))
    opened = time.monotonic()
    sock.listen(16)
    code = proc.wait()
    sock.close()
    if code != 0:
        sys.exit(f"{command(port, 30)[0]} exited {code}")
    return (time.monotonic() - opened) * 1000

def cpu_per_second(command, seconds=10):
    """CPU (user + system) per second waited, for a port that stays closed."""
    sock, port = closed_port()
    started = time.monotonic()
    proc = subprocess.Popen(command(port, seconds), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    waited = time.monotonic() - started
    sock.close()
    return (usage.ru_utime + usage.ru_stime) * 1000 / waited

peaks = []
for name, command in tools.items():
    for label, low, high in (("early", 0.2, 0.7), ("late", 3.0, 4.0)):
        times = [notice(command, low, high, peaks if name == "wait_for" else None)
                 for _ in range(runs)]
        print(f"{name}: notice latency, port opened {low}-{high} s in, over {runs} runs "
              f"(listen() to process exit): median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms, min {min(times):.1f} ms")
for name, command in tools.items():
    cpu = [cpu_per_second(command) for _ in range(3)]
    print(f"{name}: CPU per second waited over a 10 s wait: median "
          f"{statistics.median(cpu):.2f} ms/s (runs: {', '.join(f'{c:.2f}' for c in cpu)})")
print(f"wait_for: peak RSS while waiting (VmHWM): median {statistics.median(peaks)} KiB, "
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

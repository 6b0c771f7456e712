#!/usr/bin/env python3
"""Measures how fast an initkit binary exits after SIGTERM while a step waits.

Builds the release `wait_for` example (TCP only), starts it against a loopback port that never
opens, sends SIGTERM once it is polling, and times kill -> exit. Prints the median and the max
over RUNS runs and checks every exit code is 143. Target (README, Measured figures): under 100 ms.

Usage: python3 scripts/measure-sigterm.py [RUNS]
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

subprocess.run(
    ["cargo", "build", "--release", "--quiet", "--example", "wait_for",
     "--no-default-features", "--features", "tcp"],
    cwd=ROOT, check=True)
binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                      "release", "examples", "wait_for")

# A loopback port with nothing listening: every attempt is refused, so the wait polls forever.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()

latencies = []
for _ in range(RUNS):
    env = dict(os.environ, INITKIT_TERMINATION_LOG="/dev/null", INITKIT_LOG="error")
    proc = subprocess.Popen([binary, f"tcp://127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # let it start polling
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    latencies.append((time.monotonic() - start) * 1000)
    if code != 143:
        sys.exit(f"expected exit code 143, got {code}")

print(f"SIGTERM -> exit over {RUNS} runs: median {statistics.median(latencies):.2f} ms, "
      f"max {max(latencies):.2f} ms (all exit 143)")

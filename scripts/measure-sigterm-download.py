#!/usr/bin/env python3
"""Measures how fast an initkit binary exits after SIGTERM while a 512 MiB download is being
written.

Builds the release `fetch` example, serves a 512 MiB body on loopback (python's http.server),
starts the download, sends SIGTERM once the temp file holds half the body (so the writes, or
the fsync that follows them, are under way), and times kill -> exit. Prints the median and the
max over RUNS runs and checks every exit code is 143.

Usage: python3 scripts/measure-sigterm-download.py [RUNS]
"""
import glob
import http.server
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
SIZE = 512 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

subprocess.run(
    ["cargo", "build", "--release", "--quiet", "--example", "fetch",
     "--no-default-features", "--features", "download"],
    cwd=ROOT, check=True)
binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                      "release", "examples", "fetch")

BLOCK = b"\x5a" * (1 << 20)


class Body(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        try:
            for _ in range(SIZE // len(BLOCK)):
                self.wfile.write(BLOCK)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Body)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/artifact"

latencies = []
with tempfile.TemporaryDirectory() as work:
    for run in range(RUNS):
        dest = os.path.join(work, f"artifact-{run}")
        env = dict(os.environ, INITKIT_TERMINATION_LOG="/dev/null", INITKIT_LOG="error")
        proc = subprocess.Popen([binary, url, dest, "-"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            temps = glob.glob(os.path.join(work, ".initkit-*.tmp"))
            if any(os.path.getsize(t) >= SIZE // 2 for t in temps if os.path.exists(t)):
                break
            time.sleep(0.001)
        else:
            sys.exit("the download never reached half the body")
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait()
        latencies.append((time.monotonic() - start) * 1000)
        if code != 143:
            sys.exit(f"expected exit code 143, got {code} (run {run})")
        for leftover in glob.glob(os.path.join(work, ".initkit-*.tmp")):
            os.remove(leftover)

server.shutdown()
print(f"SIGTERM -> exit while a 512 MiB download is written, over {RUNS} runs: "
      f"median {statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms (all exit 143)")

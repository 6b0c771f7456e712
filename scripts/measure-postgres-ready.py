#!/usr/bin/env python3
"""Readiness benchmark of issue 15: how soon after PostgreSQL becomes ready each wait notices.

PostgreSQL starts 1-2 s (uniformly at random) after the waits begin. "Ready" is the moment
`pg_isready` first succeeds, found by a reference loop that runs `pg_isready` back to back (its
resolution is one `pg_isready` run, printed below). Side by side in every run:

  - PostgresWait: examples/wait_databases (a login and `SELECT 1`), release build;
  - the shell loop `until pg_isready; do sleep 0.1; done`;
  - TcpWait on the same port: examples/wait_for, release build (it answers when the port
    opens, before the server accepts logins: a negative figure says how much too early);
  - a reference loop that connects to the port back to back: when the port first accepts a
    connection, so how much earlier than logins any port check can answer.

Each latency is the waiter's exit (seen by a thread blocked in wait()) minus the end of the
first successful reference `pg_isready`. Issue 15's target: PostgresWait <= 50 ms median.

Usage: scripts/measure-postgres-ready.py [RUNS]   (default 20)
Needs Debian's PostgreSQL (/usr/lib/postgresql/<major>/bin) and python3; run as root it runs
the server as the `postgres` user. Honours CARGO_TARGET_DIR.
"""
import glob, os, random, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
PASSWORD = "bench-password-1"

subprocess.run(
    ["cargo", "build", "--quiet", "--release", "--example", "wait_databases", "--example",
     "wait_for", "--no-default-features", "--features", "tcp,postgres"],
    cwd=ROOT, check=True)
wait_databases = os.path.join(TARGET, "release/examples/wait_databases")
wait_for = os.path.join(TARGET, "release/examples/wait_for")

as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
work = tempfile.mkdtemp(prefix="initkit-pg-ready-")
if as_postgres:
    shutil.chown(work, "postgres")
data = os.path.join(work, "data")
pwfile = os.path.join(work, "pw")
with open(pwfile, "w") as f:
    f.write(PASSWORD)
if as_postgres:
    shutil.chown(pwfile, "postgres")
subprocess.run(as_postgres + [f"{BIN}/initdb", "-D", data, "-U", "postgres", "--auth",
               "scram-sha-256", f"--pwfile={pwfile}", "--no-sync"],
               check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_isready(port):
    return subprocess.run([f"{BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0


def port_opens(port, out):
    """Connects back to back until the port accepts; records when it first did."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                out["port opens (reference)"] = (time.monotonic(), 0)
                return
        except OSError:
            pass


def watch(proc, out, key):
    proc.wait()
    out[key] = (time.monotonic(), proc.returncode)


results = {"PostgresWait": [], "pg_isready loop (0.1 s)": [], "TcpWait": [],
           "port opens (reference)": []}
resolution = []
env = dict(os.environ, INITKIT_LOG="error", INITKIT_TERMINATION_LOG="/dev/null")
for run in range(RUNS):
    port = free_port()
    waiters = {
        "PostgresWait": [wait_databases],
        "pg_isready loop (0.1 s)": ["sh", "-c",
            f"until {BIN}/pg_isready -q -h 127.0.0.1 -p {port}; do sleep 0.1; done"],
        "TcpWait": [wait_for, "--timeout", "60s", f"127.0.0.1:{port}"],
    }
    run_env = dict(env, DATABASE_URL=f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres")
    exits, threads = {}, []
    for key, argv in waiters.items():
        proc = subprocess.Popen(argv, env=run_env, stdout=subprocess.DEVNULL)
        t = threading.Thread(target=watch, args=(proc, exits, key))
        t.start()
        threads.append(t)
    time.sleep(random.uniform(1.0, 2.0))
    server = subprocess.Popen(
        as_postgres + [f"{BIN}/postgres", "-D", data, "-p", str(port), "-c",
                       "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={work}",
                       "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = threading.Thread(target=port_opens, args=(port, exits))
    opener.start()
    threads.append(opener)
    while True:
        began = time.monotonic()
        if pg_isready(port):
            ready = time.monotonic()
            resolution.append(ready - began)
            break
    for t in threads:
        t.join(timeout=60)
    subprocess.run(as_postgres + [f"{BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"],
                   check=True, stdout=subprocess.DEVNULL)
    server.wait()
    for key in results:
        at, code = exits[key]
        assert code == 0, f"{key} exited {code}"
        results[key].append((at - ready) * 1000)
    print(f"run {run + 1:2}: " + "  ".join(f"{k} {results[k][-1]:+7.1f} ms" for k in results),
          flush=True)

shutil.rmtree(work, ignore_errors=True)
print(f"\nready = end of the first successful pg_isready (its run: median "
      f"{statistics.median(resolution) * 1000:.1f} ms); {RUNS} runs; PostgreSQL {BIN.split('/')[-2]}")
print(f"{'waiter':28} {'median':>9} {'min':>9} {'max':>9}   (ms after ready; negative = before)")
for key, values in results.items():
    print(f"{key:28} {statistics.median(values):+9.1f} {min(values):+9.1f} {max(values):+9.1f}")

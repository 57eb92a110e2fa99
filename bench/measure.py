#!/usr/bin/env python3
"""Start-up time and idle memory of `app` modes and of the bare hyper baseline.

Usage: measure.py APP HELLO  (DATABASE_URL and REDIS_URL in the environment)
Prints one JSON object with the figures; bench/run.sh formats them.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

APP, HELLO = sys.argv[1], sys.argv[2]
RUNS = int(os.environ.get("STARTUP_RUNS", "20"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(port, path):
    """One GET over a fresh connection; None while nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
            return int(head.split()[1]) if head.startswith(b"HTTP/1.1") else None
    except OSError:
        return None


def start(argv, port, env_extra=None):
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="warn", LOG_FORMAT="json")
    env.update(env_extra or {})
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_to_200(argv, path):
    port = free_port()
    t0 = time.perf_counter()
    proc = start(argv, port)
    try:
        while True:
            if status_of(port, path) == 200:
                return (time.perf_counter() - t0) * 1000
            if proc.poll() is not None:
                raise SystemExit(f"{argv} exited with {proc.returncode} before answering")
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"{argv} did not answer within 30 s")
            time.sleep(0.001)
    finally:
        proc.terminate()
        proc.wait()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_rss(argv, path, settle=3.0):
    port = free_port()
    # realtime refuses to start without APP_SECRET (it signs socket tokens), and `all`
    # (whose worker consumes the webhooks and http queues) without the encryption key
    # and the signing secret, which `dev` generates.
    proc = start(argv, port, {
        "ADMIN_TOKEN": "bench-admin-token-0123456789",
        "APP_SECRET": "bench-app-secret-0123456789abcdef0123456789",
        "ENCRYPTION_KEY": "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
        "OUTBOUND_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    })
    try:
        deadline = time.time() + 30
        while status_of(port, path) != 200:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"{argv} did not become healthy")
            time.sleep(0.01)
        time.sleep(settle)
        # One more health call so pools hold their steady-state connections.
        status_of(port, path)
        time.sleep(0.5)
        return rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def summary(samples):
    samples = sorted(samples)
    return {
        "min": round(samples[0], 1),
        "p50": round(statistics.median(samples), 1),
        "p90": round(samples[int(len(samples) * 0.9) - 1], 1),
    }


result = {}
def time_hello():
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([HELLO, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while status_of(port, "/") != 200:
            time.sleep(0.001)
        return (time.perf_counter() - t0) * 1000
    finally:
        proc.terminate()
        proc.wait()

app_start, hello_start = [], []
for _ in range(RUNS):  # interleaved, so machine noise hits both alike
    app_start.append(time_to_200([APP, "serve"], "/api/health"))
    hello_start.append(time_hello())
result["cold_start_ms"] = {
    "app_serve_to_first_200_health": summary(app_start),
    "bare_hyper_to_first_200": summary(hello_start),
}

modes = {
    "serve": [APP, "serve"],
    "worker": [APP, "worker"],
    "scheduler": [APP, "scheduler"],
    "realtime": [APP, "realtime"],
    "all": [APP, "all"],
    "dev": [APP, "dev"],
}
result["idle_rss_kib"] = {m: idle_rss(argv, "/api/health") for m, argv in modes.items()}
port = free_port()
proc = subprocess.Popen([HELLO, str(port)], stdout=subprocess.DEVNULL)
while status_of(port, "/") != 200:
    time.sleep(0.01)
time.sleep(1)
result["idle_rss_kib"]["bare_hyper"] = rss_kib(proc.pid)
proc.terminate()
proc.wait()
print(json.dumps(result))

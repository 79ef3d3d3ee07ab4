"""Load benchmark of the playground: a real `cnnkit serve` (uvicorn) in a subprocess on
127.0.0.1, 16 concurrent clients sending 1,000 mixed requests in total:

- predict: POST /api/predict with every layer's output (a real MNIST digit PNG, cycling the
  ten bundled ones);
- conv: POST /api/conv, the explorer (the chapter's 5x5 example, its test pattern, a 28x28
  MNIST digit with a Sobel kernel and padding "same"), cycling.

Every 4th request is a conv request. Clients are threads in this process, each with its own
keep-alive connection (`http.client`, the lightest client in the standard library), closed
loop (next request as soon as the answer is read). The run is bounded in time (--timeout).
Prints the error count (every answer must be 200 with the expected JSON fields), p50/p90/p99
and max latency per kind, the throughput, and the 1-minute load average before and after
(the machine is shared: other processes' load shows there).

    python benchmarks/bench_serve.py                      # the bundled model, or ./runs' newest
    python benchmarks/bench_serve.py runs/NAME --clients 16 --requests 1000 --workers 2

Exit code 1 if any request failed or the run timed out.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = sorted((ROOT / "src" / "cnnkit" / "assets" / "digits").glob("digit_*.png"))
CONV_BODIES = [
    {"input": "chapter"},
    {"input": "pattern", "kernel": "sobel-x", "padding": 1},
    {"input": "digit", "kernel": "sobel-y", "padding": "same"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: str | None, port: int, workers: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "cnnkit", "serve", "--port", str(port), "--workers", str(workers)]
    if checkpoint:
        args.insert(4, checkpoint)
    proc = subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the server exited with code {proc.wait()}")
        if "http://" in line:
            print(line.strip())
            return proc
        print(line.strip())
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def schedule(n: int) -> list[tuple[str, str, bytes, str]]:
    """(kind, path, body, content type) for request i: every 4th a conv request."""
    pngs = [p.read_bytes() for p in DIGITS]
    out = []
    for i in range(n):
        if i % 4 == 3:
            body = json.dumps(CONV_BODIES[(i // 4) % len(CONV_BODIES)]).encode()
            out.append(("conv", "/api/conv", body, "application/json"))
        else:
            out.append(("predict", "/api/predict", pngs[i % len(pngs)], "image/png"))
    return out


def check(kind: str, status: int, data: bytes) -> str | None:
    if status != 200:
        return f"{kind}: HTTP {status}: {data[:200]!r}"
    try:
        got = json.loads(data)
    except ValueError:
        return f"{kind}: not JSON"
    need = ("probabilities", "layers", "predicted") if kind == "predict" else ("output", "steps")
    missing = [k for k in need if k not in got]
    return f"{kind}: missing {missing}" if missing else None


def client(port: int, jobs: list, lock: threading.Lock, results: list, stop: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < stop:
        with lock:
            if not jobs:
                break
            kind, path, body, ctype = jobs.pop()
        t = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": ctype})
            response = conn.getresponse()
            data = response.read()
            error = check(kind, response.status, data)
        except (OSError, http.client.HTTPException) as e:
            error = f"{kind}: {type(e).__name__}: {e}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        results.append((kind, time.perf_counter() - t, error))
    conn.close()


def server_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of the server process and its children (the --workers
    processes), from /proc; None where there is no /proc. Less sensitive than latency to the
    other jobs of a shared machine: it is the work the server did, not the time it waited."""
    clock = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids, total = [pid], 0.0
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.append(int(child))
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / clock  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="load benchmark of cnnkit serve")
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint or run folder")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--warmup", type=int, default=50, help="requests before measuring")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the run")
    args = parser.parse_args(argv)

    port = free_port()
    load_before = os.getloadavg()[0]
    proc = start_server(args.checkpoint, port, args.workers)
    try:
        warm: list = []
        client(port, schedule(args.warmup), threading.Lock(), warm, time.time() + 60)
        jobs = schedule(args.requests)[::-1]
        results: list = []
        lock = threading.Lock()
        stop = time.time() + args.timeout
        threads = [threading.Thread(target=client, args=(port, jobs, lock, results, stop))
                   for _ in range(args.clients)]  # fmt: skip
        cpu0 = server_cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu1 = server_cpu_seconds(proc.pid)
        load_after = os.getloadavg()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    errors = [e for _, _, e in results if e]
    print(f"\n{len(results)} requests by {args.clients} clients, {args.workers} server "
          f"process(es), in {wall:.2f} s ({len(results) / wall:.0f} req/s); "
          f"errors: {len(errors)}")  # fmt: skip
    for e in errors[:5]:
        print("  ", e)
    for kind in ("predict", "conv"):
        ms = [dt * 1000 for k, dt, e in results if k == kind and not e]
        if ms:
            print(f"{kind:8} n={len(ms):4}  p50 {statistics.median(ms):6.1f} ms  "
                  f"p90 {percentile(ms, 90):6.1f}  p99 {percentile(ms, 99):6.1f}  "
                  f"max {max(ms):6.1f}")  # fmt: skip
    if cpu0 is not None and cpu1 is not None and results:
        print(f"server CPU: {(cpu1 - cpu0) * 1000 / len(results):.2f} ms per request "
              f"(all kinds; {cpu1 - cpu0:.2f} s in all)")  # fmt: skip
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after; "
          f"{os.cpu_count()} CPUs; server exit code {proc.returncode}")  # fmt: skip
    complete = len(results) == args.requests
    if not complete:
        print(f"timed out: {args.requests - len(results)} requests not sent")
    return 0 if complete and not errors else 1


if __name__ == "__main__":
    sys.exit(main())

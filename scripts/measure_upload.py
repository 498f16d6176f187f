"""Measure the web process's memory while a large map is uploaded through the REST API.

    .venv/bin/python scripts/measure_upload.py --gb 2

Starts the web server (gunicorn, as the Docker image runs it, one worker) on a temporary data
folder and SQLite database, creates a user and a project, streams a valid NPY file of the asked
size to POST /api/v1/projects/{id}/datasets/ from a generator (the client holds one chunk at a
time), samples the RSS of the server's processes every 50 ms, and prints the growth in MB and
the upload rate. The baseline is the server's RSS after a first small request.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 4 << 20


def rss_mb(proc: psutil.Process) -> float:
    procs = [proc] + proc.children(recursive=True)
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def npy_header(shape) -> bytes:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    buf = tempfile.SpooledTemporaryFile()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.seek(0)
    return buf.read()


def request(port, method, path, body=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gb", type=float, default=2.0)
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()
    data = tempfile.mkdtemp(prefix="xrfweb-upload-")
    env = {**os.environ, "XRFWEB_DATA_DIR": data, "DATABASE_URL": f"sqlite:///{data}/db.sqlite3",
           "DJANGO_SETTINGS_MODULE": "xrfweb.settings", "DEBUG": "1"}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User; "
                    "User.objects.create_user('uploader', password='upload-pass-123')"],
                   cwd=ROOT, env=env, check=True)
    server = subprocess.Popen([str(Path(py).parent / "gunicorn"), "-w", "1", "--timeout", "600",
                               "-b", f"127.0.0.1:{args.port}", "xrfweb.wsgi"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                status, body = request(args.port, "POST", "/api/v1/auth/token/",
                                       {"username": "uploader", "password": "upload-pass-123"})
                break
            except OSError:
                time.sleep(0.2)
        token = body["token"]
        _, project = request(args.port, "POST", "/api/v1/projects/", {"name": "upload test"}, token)
        proc = psutil.Process(server.pid)
        baseline = rss_mb(proc)

        side = int((args.gb * 2**30 / 4) ** 0.5)
        header = npy_header((1, side, side))
        size = len(header) + side * side * 4
        boundary = "xrfwebboundary7MA4YWxkTrZu0gW"
        pre = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.npy\"\r\n"
               f"Content-Type: application/octet-stream\r\n\r\n").encode()
        post = f"\r\n--{boundary}--\r\n".encode()
        peak, done = [baseline], threading.Event()

        def sample():
            while not done.is_set():
                peak.append(rss_mb(proc))
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
        conn.putrequest("POST", f"/api/v1/projects/{project['id']}/datasets/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(pre) + size + len(post)))
        conn.endheaders()
        t0 = time.perf_counter()
        conn.send(pre + header)
        zeros = bytes(CHUNK)
        left = side * side * 4
        while left:
            n = min(CHUNK, left)
            conn.send(zeros[:n])
            left -= n
        conn.send(post)
        response = conn.getresponse()
        reply = json.loads(response.read() or b"{}")
        seconds = time.perf_counter() - t0
        done.set()
        print(json.dumps({
            "upload_gb": round(size / 2**30, 3), "status": response.status,
            "dataset_status": reply.get("status"), "seconds": round(seconds, 1),
            "mb_per_s": round(size / 2**20 / seconds), "web_rss_baseline_mb": round(baseline),
            "web_rss_peak_mb": round(max(peak)), "web_rss_growth_mb": round(max(peak) - baseline),
        }, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()

"""Real processes for the fault tests: a private Redis (never the machine's shared one on 6379),
the web (`manage.py runserver`) and a Celery worker pointed at it, and the worker's pool children.

Every wait has a deadline; every process is stopped by its own pid (process group for the worker).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from tests.reliability.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]


def free_port(start: int = 6390) -> int:
    """The first port from `start` that nothing listens on (other sessions may hold 6390)."""
    for port in range(start, start + 200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {start}..{start + 200}")


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: a test never leaves a server behind."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServer:
    """`redis-server --port P --save "" --appendonly no`: keeps nothing across a restart, like
    a Redis that lost its memory."""

    def __init__(self, port: int, log_dir: Path):
        self.port, self.log_path, self.process = port, Path(log_dir) / f"redis-{port}.log", None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, 20, f"redis on port {self.port}")

    def stop(self) -> None:
        if self.process:
            terminate(self.process)

    def answers(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False


def _env(extra: dict) -> dict:
    from django.db import connection

    from tests.conftest import database_url

    return dict(os.environ, DATABASE_URL=database_url(connection.settings_dict), **extra)


class WebServer:
    """The web app in its own process (runserver), so its Redis can differ from the tests'."""

    def __init__(self, env_extra: dict, log_dir: Path):
        self.port = free_port(18100)
        self.log_path = Path(log_dir) / f"web-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload",
                 "--skip-checks"], cwd=REPO, env=_env(env_extra), stdout=log,
                stderr=subprocess.STDOUT)
        wait_until(lambda: self.alive() or self.process.poll() is not None, 60, "the web to answer")
        assert self.process.poll() is None, self.log_tail()

    def request(self, method: str, path: str, token: str = "", body: dict | None = None,
                timeout: float = 30, raw: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, dict]:
        """(status, JSON body) of one HTTP request; `raw` sends bytes as they are."""
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         method=method)
        request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Token {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw[:500].decode(errors="replace")}

    def alive(self) -> bool:
        try:
            return self.request("GET", "/healthz", timeout=5)[0] in (200, 503)
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        terminate(self.process)


class Worker:
    """`celery -A xrfweb worker` with its own environment (e.g. another REDIS_URL)."""

    def __init__(self, env_extra: dict, queues: list[str], nodename: str, log_dir: Path):
        self.nodename = nodename
        self.log_path = Path(log_dir) / f"worker-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "xrfweb", "worker", "-Q", ",".join(queues),
               "-n", nodename, "-c", "1", "--without-gossip", "--without-mingle", "-l", "INFO"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, cwd=REPO, env=_env(env_extra), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: "ready." in self.log() or self.process.poll() is not None, 90,
                   "the worker to be ready")
        assert self.process.poll() is None, self.log()[-3000:]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

"""`./run.sh` as a newcomer runs it: serves, reports healthy, and one Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _component(root: int, marker: bytes) -> int | None:
    """The direct child of run.sh whose command line holds `marker`."""
    for pid in sorted(_descendants(root)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if marker in cmdline and ppid == root:
            return pid
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the venv that ./run.sh creates")
def test_run_sh_serves_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "WIREWAN_INSTANCE": str(tmp_path / "instance")})
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    proc = subprocess.Popen(["./run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    health = json.load(resp)
                    break
            except OSError:
                time.sleep(0.3)
        assert health == {"status": "ok", "database": "ok", "redis": "ok"}, log_path.read_text()
        while "WireWAN is running at" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/register", timeout=5) as resp:
            assert b"Create admin account" in resp.read()
        assert (tmp_path / "instance" / "secrets.env").exists()
        # A crashed worker is restarted with a log line; the web app keeps serving meanwhile.
        worker = _component(proc.pid, b"PreloadWorker")
        assert _component(proc.pid, b"jobs/cron.py") is not None  # RQ's cron: the status/verify rounds
        os.kill(worker, signal.SIGKILL)
        while f"worker (pid {worker}) exited" not in log_path.read_text() and time.monotonic() < deadline + 30:
            time.sleep(0.2)
        assert f"worker (pid {worker}) exited with status 137; restarting it" in log_path.read_text()
        # The line is written just before the new worker is forked (and then exec's rq): wait for it.
        restarted = _component(proc.pid, b"PreloadWorker")
        while restarted in (None, worker) and time.monotonic() < deadline + 30:
            time.sleep(0.1)
            restarted = _component(proc.pid, b"PreloadWorker")
        assert restarted is not None and restarted != worker
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.load(resp)["status"] == "ok"
        assert proc.poll() is None
        started = _descendants(proc.pid)
        assert len(started) >= 4  # redis, worker, cron, gunicorn (and their children)
        # The Redis password is in a file only the owner reads, never in a command line (`ps`).
        instance = tmp_path / "instance"
        conf = instance / "redis.conf"
        assert conf.stat().st_mode & 0o777 == 0o600 and instance.stat().st_mode & 0o777 == 0o700
        password = next(line.split()[1] for line in conf.read_text().splitlines() if line.startswith("requirepass"))
        for pid in started:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert password.encode() not in argv, argv
        for name in ("wirewan.db", "wirewan.db-wal", "wirewan.db-shm"):
            if (instance / name).exists():
                assert (instance / name).stat().st_mode & 0o777 == 0o600, name
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
        time.sleep(0.5)
        left = [pid for pid in started if _alive(pid)]
        assert left == [], f"processes left behind: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert f"WireWAN is running at http://127.0.0.1:{port}" in log_path.read_text()


PIP_STUB = """#!/bin/sh
# A stand-in for the venv's python: only `-m pip install` does anything (noisily, like pip).
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  i=0
  while [ $i -lt 40 ]; do echo "Collecting noisy-package-$i"; echo "  Downloading noisy_package-$i.whl"; i=$((i+1)); done
  echo "Successfully installed noisy-package-0"
  exit ${PIP_EXIT:-0}
fi
exit 3
"""


def test_install_noise_goes_to_a_log_file_and_the_terminal_gets_one_line_per_step(tmp_path):
    for name in ("run.sh", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / "run.sh").chmod(0o755)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(PIP_STUB)
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["WIREWAN_INSTANCE"] = str(tmp_path / "instance")

    def run(**extra: str) -> str:
        done = subprocess.run(
            ["./run.sh", "check"], cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=60
        )
        return done.stdout + done.stderr

    out = run()
    log = tmp_path / ".venv" / "pip-install.log"
    assert f"run.sh: installing requirements-dev.txt (pip's output: {log})" in out
    assert "Collecting" not in out and "Downloading" not in out
    assert "Collecting noisy-package-39" in log.read_text()
    # Installed once: the next start does not install again.
    assert "installing" not in run()
    # A failed install shows pip's last lines and where the rest is.
    (tmp_path / "requirements.txt").write_text((ROOT / "requirements.txt").read_text() + "\n# changed\n")
    out = run(PIP_EXIT="1")
    assert f"run.sh: pip failed; the whole output is in {log}" in out
    assert "Successfully installed noisy-package-0" in out and "Collecting noisy-package-0" not in out

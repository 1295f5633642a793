"""``make run``: the Procfile's processes side by side, stopped cleanly by Ctrl-C.

Each process's output is printed with its name in front. Once the web process answers, the
address and the demo logins are printed last, where they stay on screen (the processes log
warnings only). Ctrl-C (or SIGTERM) sends SIGTERM to each process itself, not to its process
group, so each stops the way it was built to: gunicorn finishes its requests, Celery's warm
shutdown lets the running task end and stops its pool and beat; then this exits 0.

Why not honcho: it signals whole process groups, so Celery's pool child and beat died
mid-work and logged an ERROR; it sent SIGKILL after 5 s; and it exited 130, which make
reported as an error line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_WAIT = 30  # seconds a process gets to stop before it is killed
READY_WAIT = 120
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """``name: command`` lines, in order (comments and blank lines skipped)."""
    processes = {}
    for line in path.read_text().splitlines():
        match = _LINE.match(line.strip())
        if match and not line.lstrip().startswith("#"):
            processes[match.group(1)] = match.group(2)
    return processes


class Supervisor:
    def __init__(self, processes: dict[str, str], port: str, var_dir: Path) -> None:
        self.processes = processes
        self.port = port
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.worker_ready = var_dir / "run" / "worker.ready"
        self.width = max(len(name) for name in processes)

    def say(self, name: str, text: str) -> None:
        with self.lock:
            for line in text.rstrip("\n").split("\n"):
                print(f"{name:<{self.width}} | {line}", flush=True)

    def start(self) -> None:
        self.worker_ready.parent.mkdir(parents=True, exist_ok=True)
        self.worker_ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            "PORT": self.port,
            "PYTHONUNBUFFERED": "1",
            "CUSTOS_WORKER_READY_FILE": str(self.worker_ready),  # touched by config/celery.py
        }
        for name, command in self.processes.items():
            # A session of its own: the terminal's Ctrl-C reaches only this supervisor, which
            # then stops each process in order.
            child = subprocess.Popen(  # noqa: S603  (the commands are the repository's own Procfile)
                ["/bin/sh", "-c", f"exec {command}"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            self.children[name] = child
            threading.Thread(target=self._pump, args=(name, child), daemon=True).start()

    def _pump(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:  # type: ignore[union-attr]  # started with stdout=PIPE
            self.say(name, line)

    def announce_when_ready(self, banner: str) -> None:
        """Print ``banner`` once the web answers and the worker is up (their start-up output is above it)."""
        deadline = time.monotonic() + READY_WAIT
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if not (self._web_answers() and self.worker_ready.exists()):
                time.sleep(0.3)
                continue
            with self.lock:
                address = f"http://127.0.0.1:{self.port}/"
                print(f"\nCustos is running on {address} (Ctrl-C stops it).\n{banner}\n", flush=True)
            return

    def _web_answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/accounts/login/", timeout=2).close()
        except (urllib.error.URLError, OSError):
            return False
        return True

    def wait(self) -> int:
        """Until a signal or a process ending on its own; then stop the rest. 0 when asked to stop."""
        asked = []

        def _stop(signum, frame) -> None:
            asked.append(signum)
            self.stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        ended = None
        while not self.stopping.is_set():
            ended = next((name for name, child in self.children.items() if child.poll() is not None), None)
            if ended:
                self.stopping.set()
                break
            time.sleep(0.2)
        if ended:
            self.say("run", f"{ended} exited with status {self.children[ended].returncode}; stopping the others.")
        else:
            print("", flush=True)  # after the terminal's ^C
            self.say("run", "stopping " + ", ".join(self.children) + " ...")
        self.stop()
        return 0 if asked and not ended else 1

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("run", f"{name} did not stop within {STOP_WAIT} s; killing it.")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.say("run", "stopped.")


def _banner() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from investigations.management.commands.seed_demo import Command as SeedDemo

    return SeedDemo.logins()


def main() -> int:
    banner = _banner()
    from django.conf import settings

    supervisor = Supervisor(procfile(), port=os.environ.get("PORT", "8000"), var_dir=settings.VAR_DIR)
    supervisor.start()
    threading.Thread(target=supervisor.announce_when_ready, args=(banner,), daemon=True).start()
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())

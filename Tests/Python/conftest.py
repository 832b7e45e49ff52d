"""Fixtures of the server's Python tests: a `spool serve` process on a temporary directory."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def spool_binary() -> Path:
    """The `spool` executable: $SPOOL_BIN, or the debug build in .build."""
    path = Path(os.environ.get("SPOOL_BIN", ROOT / ".build" / "debug" / "spool"))
    if not path.exists():
        pytest.fail(f"{path} not found: run `swift build --product spool` first (or set SPOOL_BIN)")
    return path


class Server:
    """A running `spool serve`, its address as printed on its first line."""

    def __init__(self, data: Path, extra: list[str] = ()):
        self.data = data
        self.process = subprocess.Popen(
            [str(spool_binary()), "serve", "--data", str(data), "--listen", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            pytest.fail(f"spool serve exited with {self.process.returncode}: {self.process.stderr.read()}")
        # "spool serve: listening on 127.0.0.1:PORT, data directory DIR"
        self.first_line = line.strip()
        self.address = self.first_line.split("listening on ", 1)[1].split(",", 1)[0]

    def stop(self, sig=signal.SIGTERM, timeout=10.0) -> float:
        """Sends `sig` and waits for the exit; returns the seconds it took."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return time.monotonic() - started


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "spool-data")
    yield running
    running.stop()

"""A real ``nstream serve`` for the web tests: a subprocess on a free loopback port, its own data folder,
and the seeded test styles installed as ``seeded`` and ``red`` (``$NSTREAM_STYLES``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port

requests = pytest.importorskip("requests", reason="the web tests talk HTTP with requests (the test extra)")
pytest.importorskip("uvicorn", reason="the web app needs its extra: pip install 'nstream[serve]'")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Everything that would reach out to the network stays off: on a closed network it is refused anyway.
QUIET = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1100,1500"]


def install_styles(folder: Path, seeded: Path, red: Path) -> Path:
    """A styles folder holding the seeded network as ``seeded`` and the all-red one as ``red``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(seeded, folder / "seeded.pth")
    shutil.copy(red, folder / "red.pth")
    return folder


class Server:
    """``python -m nstream serve ARGS`` until ``stop``; ``api(method, path, ...)`` sends the token if any."""

    def __init__(self, data: Path, styles: Path, *args: str, token: str | None = None, port: int | None = None,
                 without_torch: bool = False) -> None:
        self.data, self.token = data, token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        launcher = [str(ROOT / "tests" / "without_torch.py"), str(ROOT / "nstream" / "serve" / "cli.py")] \
            if without_torch else ["-m", "nstream", "serve"]
        command = [sys.executable, *launcher, "--port", str(self.port), "--data-dir", str(data), *args]
        if token:
            command += ["--token", token]
        if "-s" not in args and "--style" not in args:
            command += ["-s", "seeded", "-s", "red"]
        env = {**os.environ, "NSTREAM_STYLES": str(styles), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.log = open(data.parent / f"server-{self.port}.log", "w")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nstream serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nstream serve did not answer within {limit} s:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.data.parent / f"server-{self.port}.log").read_text()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)

    def submit(self, clip: Path, style: str = "seeded", **fields: Any) -> Any:
        with open(clip, "rb") as handle:
            return self.api("POST", "/api/jobs", files={"file": (clip.name, handle)}, data={"style": style, **fields})

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Every state the job's server-sent events report, until the stream ends with the job."""
        states = []
        with self.api("GET", f"/api/jobs/{job_id}/events", stream=True, timeout=300) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    states.append(json.loads(line[6:]))
        return states

    def wait(self, job_id: str, until: tuple[str, ...] = ("done", "failed", "cancelled"), limit: float = 300) -> dict:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            state = self.api("GET", f"/api/jobs/{job_id}").json()
            if state.get("state") in until:
                return state
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never reached {until}: {state}")

    def rss_mb(self) -> float:
        """The server's resident memory (MB), from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, how: int = signal.SIGTERM) -> int:
        """Stop the server with ``how`` (killed if it has not ended 30 s later); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(how)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@contextmanager
def serving(data: Path, styles: Path, *args: str, **kwargs: Any) -> Iterator[Server]:
    """A started server that is stopped when the block (or the fixture) ends."""
    server = Server(data, styles, *args, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def chromium(profile: Path, downloads: Path | None = None, extra: tuple[str, ...] = ()) -> Any:
    """Debian's chromium, headless, through chromium-driver, with a fresh profile (and downloads going
    to ``downloads``); nothing is downloaded (no Selenium Manager: both paths are given)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*QUIET, f"--user-data-dir={profile}", *extra):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))


def wait_for(condition: Any, limit: float = 120.0, every: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that (the limit only keeps a broken
    run from hanging: it is not a claim about speed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting after {limit} s")

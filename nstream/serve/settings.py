"""The server's options as one typed object, validated in one place (the command line maps onto it)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from nstream.errors import NStreamError

LOOPBACK_NAMES = ("localhost",)


def default_data_dir() -> Path:
    """Where jobs and cached thumbnails live: ``$NSTREAM_SERVE_DIR`` or ``~/.local/share/nstream/serve``."""
    root = os.environ.get("NSTREAM_SERVE_DIR")
    return Path(root) if root else Path.home() / ".local" / "share" / "nstream" / "serve"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    """Everything ``nstream serve`` takes; see its ``--help`` for each option."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required when host is not a loopback address
    data_dir: Path = field(default_factory=default_data_dir)
    max_upload_mb: float = 200.0
    workers: int = 1  # jobs stylized at once
    queue: int = 4  # jobs waiting beyond those running; one more is answered 429
    job_timeout_s: float = 1800.0
    ttl_s: float = 24 * 3600.0  # results (and failed jobs) are deleted this long after they end
    styles: list[str] = field(default_factory=list)  # offered styles; empty: every installed one
    engine: str = "auto"
    device: str = "auto"
    max_live: int = 1  # live WebRTC sessions at once
    live_styles: list[str] = field(default_factory=list)  # styles of a live call; empty: the offered ones but tf26
    cors_origins: list[str] = field(default_factory=list)  # CORS stays off unless origins are named

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def validate(self) -> ServerConfig:
        """One readable error for the first setting that cannot work; returns self."""
        if not is_loopback(self.host) and not self.token:
            raise NStreamError(f"--host {self.host} opens the server to the network: give --token (a secret that "
                               "the API and the page's login require), or stay on 127.0.0.1")
        if self.token is not None and len(self.token) < 8:
            raise NStreamError("--token is too short: use 8 or more characters (or --token alone for a random one)")
        for name, value in (("--workers", self.workers), ("--queue", self.queue + 1), ("--max-live", self.max_live + 1)):
            if value < 1:
                raise NStreamError(f"{name}: use {1 if name == '--workers' else 0} or more")
        if not self.max_upload_mb > 0:
            raise NStreamError(f"--max-upload-mb {self.max_upload_mb}: use a positive size")
        if not self.job_timeout_s > 0 or not self.ttl_s > 0:
            raise NStreamError("--job-timeout and --ttl must be positive numbers of seconds")
        if not 0 < self.port < 65536:
            raise NStreamError(f"--port {self.port}: use 1 to 65535")
        return self

"""Joining a Ray cluster, or starting one for the run, with one clear line for every way it can fail.

``--cluster auto`` starts a local Ray (head only, this machine's cores) and stops it at the end;
``--cluster ray://HOST:PORT`` joins through the Ray client, ``--cluster HOST:PORT`` as a driver on a
cluster node. The address is tried with a plain TCP connect first (a few seconds), because Ray itself
retries an unreachable address for a minute and then fails with a page of log.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nstream.errors import NStreamError, first_line

EXTRA_HINT = "pip install 'nstream[cluster]'"
CLIENT_PORT = 10001  # the Ray client's default port (ray://HOST without one)
GCS_PORT = 6379  # a head node's default port
DEFAULT_OBJECT_STORE_MB = 200  # frames travel through the work folder, not the object store
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def require_ray() -> ModuleType:
    """The ``ray`` module, or the one error line that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise NStreamError(f"--cluster needs Ray, which this install lacks: {EXTRA_HINT}") from None
    return ray


def parse_address(spec: str) -> tuple[str, int]:
    """(host, port) of ``ray://HOST[:PORT]`` or ``HOST[:PORT]``; one error line for anything else."""
    text = spec.strip()
    client = text.startswith("ray://")
    rest = text[len("ray://"):] if client else text
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    default = CLIENT_PORT if client else GCS_PORT
    try:
        number = int(port) if port else default
    except ValueError:
        number = -1
    if not host or "/" in host or not 0 < number < 65536:
        raise NStreamError(f"--cluster {spec}: use auto, ray://HOST:PORT or HOST:PORT")
    return host, number


def check_reachable(spec: str, timeout: float = 3.0) -> None:
    """Raise one error line when nothing listens at the cluster address."""
    host, port = parse_address(spec)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise NStreamError(f"cannot reach the Ray cluster at {host}:{port} ({reason}): is `ray start --head` running "
                       "there, and is the port open? (--cluster auto starts one on this machine)")


def precheck(spec: str) -> None:
    """What can fail before minutes of set-up: the extra missing, nothing answering at the address."""
    require_ray()
    if spec.strip() != "auto":
        check_reachable(spec)


@dataclass
class Cluster:
    """A connection to Ray for one run: where, the dashboard (when the cluster serves one), and its CPUs/GPUs."""

    address: str
    dashboard_url: str
    started_here: bool
    resources: dict[str, float]

    def describe(self) -> str:
        """One line for the terminal: where the work runs and what the cluster has."""
        cpus, gpus = self.resources.get("CPU", 0), self.resources.get("GPU", 0)
        where = "a local Ray started for this run" if self.started_here else f"the Ray cluster at {self.address}"
        line = f"cluster: {where}, {cpus:g} CPU(s), {gpus:g} GPU(s)"
        return line + (f"; dashboard: {self.dashboard_url}" if self.dashboard_url else "")

    def shutdown(self) -> None:
        """Disconnect (and stop the local Ray this run started)."""
        require_ray().shutdown()


def _runtime_env() -> dict[str, Any]:
    """Workers import nstream from where this driver does (a source checkout that is not installed)."""
    paths = [str(PACKAGE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def connect(spec: str, num_cpus: int | None = None, object_store_mb: int = DEFAULT_OBJECT_STORE_MB) -> Cluster:
    """Connect to the cluster ``spec`` names (see the module docstring) and describe it."""
    ray = require_ray()
    local = spec.strip() == "auto"
    if not local:
        check_reachable(spec)
    options: dict[str, Any] = {"runtime_env": _runtime_env(), "log_to_driver": False,
                               "logging_level": logging.WARNING, "configure_logging": True}
    if local:
        options.update(address="local", num_cpus=num_cpus, object_store_memory=object_store_mb * 1024 * 1024)
    else:
        options["address"] = spec.strip()
    try:
        context = ray.init(**options)
    except ImportError as exc:  # ray:// needs Ray's client parts (grpcio), which a bare `pip install ray` lacks
        raise NStreamError(f"--cluster {spec} needs Ray's client ({first_line(exc)}): {EXTRA_HINT}") from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NStreamError(f"cannot join the Ray cluster at {spec} ({first_line(exc)})") from None
    dashboard = getattr(context, "dashboard_url", "") or ""
    if dashboard and "://" not in dashboard:
        dashboard = f"http://{dashboard}"
    return Cluster(address=spec, dashboard_url=dashboard, started_here=local, resources=dict(ray.cluster_resources()))


@contextmanager
def connected(spec: str | None, num_cpus: int | None = None) -> Iterator[Cluster | None]:
    """Connected to ``spec`` (said on stderr) for the block, disconnected after; None without ``--cluster``."""
    if not spec:
        yield None
        return
    cluster = connect(spec, num_cpus=num_cpus)
    print(cluster.describe(), file=sys.stderr)
    try:
        yield cluster
    finally:
        cluster.shutdown()

"""Joining a Ray cluster, or starting one for the run, with one clear line for every way it can fail.

``--cluster auto`` starts a local Ray (head only, this machine's cores) and stops it at the end;
``--cluster ray://HOST:PORT`` joins through the Ray client, ``--cluster HOST:PORT`` as a driver on a
cluster node. The address is tried with a plain TCP connect first (a few seconds), because Ray itself
retries an unreachable address for a minute and then fails with a page of log. The dashboard link is
printed when the cluster serves one, as a link that opens from this machine or said to be on the head.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from nstream.errors import NStreamError, first_line

EXTRA_HINT = "pip install 'nstream[cluster]'"
CLIENT_PORT = 10001  # the Ray client's default port (ray://HOST without one)
GCS_PORT = 6379  # a head node's default port
DEFAULT_OBJECT_STORE_MB = 200  # frames travel through the work folder, not the object store
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CLIENT_START_FAILED = "Starting Ray client server failed"  # the head could not start a client's server


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
    context = _init(ray, options, spec)
    dashboard = dashboard_link(getattr(context, "dashboard_url", "") or "", spec, local)
    return Cluster(address=spec, dashboard_url=dashboard, started_here=local, resources=dict(ray.cluster_resources()))


def _init(ray: ModuleType, options: dict[str, Any], spec: str) -> Any:
    """``ray.init``; through the Ray client, once more when the head failed to start this client's server
    process (the client server forks it while gRPC threads run, and it sometimes dies at once)."""
    try:
        return _init_once(ray, options, spec)
    except NStreamError as error:
        if CLIENT_START_FAILED not in str(error):
            raise
    time.sleep(1.0)
    return _init_once(ray, options, spec)


class _ClientServerNoise(logging.Filter):
    """Drops the one warning every Ray client connection relays from its server process on the head
    ("SIGTERM handler is not set ..."): that process runs ``ray.init`` off its main thread, nothing a user
    can act on, and it would land between the cluster line and the progress."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _init_once(ray: ModuleType, options: dict[str, Any], spec: str) -> Any:
    """``ray.init``, every failure as one line. The Ray client's own warning on a timeout is left out:
    it would print its source line around the error line, which says the same and what to check."""
    relayed = logging.getLogger("ray.util.client.logsclient")  # the client server's log lines, printed here
    if not any(isinstance(f, _ClientServerNoise) for f in relayed.filters):
        relayed.addFilter(_ClientServerNoise())
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Ray Client connection timed out", category=UserWarning)
            return ray.init(**options)
    except ImportError as exc:  # ray:// needs Ray's client parts (grpcio), which a bare `pip install ray` lacks
        raise NStreamError(f"--cluster {spec} needs Ray's client ({first_line(exc)}): {EXTRA_HINT}") from None
    except ConnectionAbortedError as exc:  # the client server answered, with its traceback: its last line says why
        said = ([line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__])[-1]
        raise NStreamError(f"cannot join the Ray cluster at {spec}: its client server says {said[:300]} (logs on "
                           "the head node, by default in /tmp/ray/session_latest/logs)") from None
    except ConnectionError as exc:
        if not spec.strip().startswith("ray://"):
            raise NStreamError(f"cannot join the Ray cluster at {spec} ({first_line(exc)})") from None
        host, port = parse_address(spec)
        raise NStreamError(f"cannot join the Ray cluster at {spec} ({first_line(exc)}): something listens at "
                           f"{host}:{port} but does not answer as a Ray client server; is {port} the head's client "
                           f"port (`ray start --head --ray-client-server-port`, {CLIENT_PORT} by default)?") from None
    except (RuntimeError, ValueError) as exc:
        raise NStreamError(f"cannot join the Ray cluster at {spec} ({first_line(exc)})") from None


def is_loopback(host: str) -> bool:
    """``127.x.x.x``, ``::1`` or ``localhost``."""
    return host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")


def is_this_machine(host: str) -> bool:
    """Whether ``host`` names this machine (loopback, or the address Ray gives this node)."""
    if is_loopback(host):
        return True
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return False
    return is_loopback(address) or address == require_ray().util.get_node_ip_address()


def dashboard_link(url: str, spec: str, started_here: bool) -> str:
    """The dashboard Ray reports (``host:port``) as a link. A head whose dashboard listens on loopback
    reports 127.0.0.1, which from another machine is nothing (or something else): that link is said to
    be on the head, with how to reach it."""
    if not url:
        return ""
    link = url if "://" in url else f"http://{url}"
    parts = urlsplit(link)
    if started_here or not is_loopback(parts.hostname or "") or is_this_machine(parse_address(spec)[0]):
        return link
    head, port = parse_address(spec)[0], parts.port or 8265
    return (f"{link} on the head node, where it listens on loopback only "
            f"(`ssh -L {port}:localhost:{port} {head}` opens it here at http://localhost:{port})")


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

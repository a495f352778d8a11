"""``python -m nstream serve`` / ``nstream serve``: the options, then uvicorn on the app."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from nstream.errors import NStreamError
from nstream.serve.settings import ServerConfig, default_data_dir


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from nstream.cli_args import Parser

    p = parser or Parser(prog="nstream serve")
    p.description = ("A web page for stylizing uploads and the live webcam, and the HTTP API it uses "
                     "(README, 'Web app'). Listens on 127.0.0.1 unless --host says otherwise, which needs --token.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", nargs="?", const="", default=os.environ.get("NSTREAM_TOKEN"),
                   help="require this bearer token for the API and a login on the page (default $NSTREAM_TOKEN); "
                        "--token alone makes a random one and prints it; required for any address but loopback")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload accepted (default 200)")
    p.add_argument("--workers", type=int, default=1, help="jobs stylized at once (default 1: each uses every core)")
    p.add_argument("--queue", type=int, default=4, help="jobs waiting beyond the running ones; more get 429 (default 4)")
    p.add_argument("--job-timeout", type=float, default=1800.0, metavar="SECONDS", help="time limit of a job (default 1800)")
    p.add_argument("--ttl", type=float, default=24 * 3600.0, metavar="SECONDS",
                   help="results are deleted this long after their job ends (default 86400)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"jobs, results and thumbnails (default $NSTREAM_SERVE_DIR or {default_data_dir()})")
    p.add_argument("-s", "--style", action="append", default=[],
                   help="offer only this style (repeatable; as stream.py -s takes it); default: every installed style")
    p.add_argument("--engine", default="auto", help="inference engine for every job (as stream.py --engine)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-live", type=int, default=1, help="live webcam calls at once (default 1)")
    p.add_argument("--live-style", action="append", default=[], metavar="STYLE",
                   help="a style of the live view (repeatable; each is loaded when a call starts, so a switch costs "
                        "nothing); default: the offered styles but the 26 tf26 ones")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow API calls from pages of this origin (repeatable; default: none, CORS off)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def server_config(args: argparse.Namespace) -> ServerConfig:
    token = args.token
    if token == "":
        token = secrets.token_urlsafe(24)
        print(f"token: {token}", flush=True)
    return ServerConfig(host=args.host, port=args.port, token=token, data_dir=args.data_dir or default_data_dir(),
                        max_upload_mb=args.max_upload_mb, workers=args.workers, queue=args.queue,
                        job_timeout_s=args.job_timeout, ttl_s=args.ttl, styles=list(args.style), engine=args.engine,
                        device=args.device, max_live=args.max_live, live_styles=list(args.live_style),
                        cors_origins=list(args.cors_origin))


M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas: every job runs on fresh pipeline threads, and each new thread may get
    its own arena, whose freed memory is kept, so a long-running server's memory crept up job after job
    (docs/BENCHMARKS.md, "Web app": +135 MB over 30 jobs, flat with the cap). False where it is no glibc."""
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def run(args: argparse.Namespace) -> None:
    """Start the server; returns when it is stopped (Ctrl-C or SIGTERM: running jobs are stopped, waiting
    ones kept for the next start)."""
    try:
        import uvicorn
    except ImportError:
        raise NStreamError("the web app needs its extra: pip install 'nstream[serve]'") from None
    from nstream.serve.app import create_app

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    config = server_config(args)
    limit_malloc_arenas()
    app = create_app(config)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"nstream serve: http://{host}:{config.port}/  (data in {config.data_dir})", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info" if args.verbose else "warning",
                timeout_graceful_shutdown=5, server_header=False)


def main(argv: Sequence[str] | None = None) -> int:
    from nstream.cli_args import run_guarded

    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())

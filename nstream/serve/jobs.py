"""Jobs: uploaded files stylized by :func:`nstream.session.build_session` in a bounded worker pool.

Each job is a folder under ``<data dir>/jobs/<id>/`` holding the upload, the result and ``job.json``
(its record, rewritten atomically at every change of state), so a restarted server still serves every
finished result that has not expired; jobs that were waiting run again, one cut off mid-run is marked
failed. Ids are 128 random bits. The pool runs ``workers`` jobs and keeps ``queue`` more waiting;
beyond that :class:`Full` (the API's 429). A job past its time limit is stopped (its output drained
and discarded), and results expire ``ttl`` seconds after they end: the sweeper deletes them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nstream.errors import NStreamError, first_line
from nstream.serve.settings import ServerConfig

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = (DONE, FAILED, CANCELLED)
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
RECORD = "job.json"


def new_id() -> str:
    """128 random bits, URL-safe: a job's id is the only key to it, so it must not be guessable."""
    return secrets.token_urlsafe(16)


class Full(Exception):
    """Every worker is busy and the queue is full: the API answers 429 with this message."""


@dataclass
class Job:
    """One job's record (what ``job.json`` holds); ``runtime`` fields live only while the server runs."""

    id: str
    filename: str  # the client's file name, display text only
    kind: str  # video or image
    style: str  # the style spec the session gets
    style_name: str
    strength: float
    temporal_strength: float
    input: str  # file names inside the job's folder, chosen by the server
    result: str
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    expires: float | None = None
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict, repr=False)

    def public(self) -> dict[str, Any]:
        """What ``GET /api/jobs/{id}`` says."""
        total, done = self.frames_total, self.frames_done
        progress = 1.0 if self.state == DONE else (min(1.0, done / total) if total else 0.0)
        eta = None
        if self.state == RUNNING and self.started and total and 0 < done < total:
            eta = round((time.time() - self.started) * (total - done) / done, 1)
        return {"id": self.id, "state": self.state, "progress": round(progress, 4), "frames_done": done,
                "frames_total": total, "eta_s": eta, "error": self.error, "filename": self.filename, "kind": self.kind,
                "style": self.style_name, "strength": self.strength, "temporal_strength": self.temporal_strength,
                "created": self.created, "finished": self.finished, "expires": self.expires,
                "result": f"/api/jobs/{self.id}/result" if self.state == DONE else None}

    def download_name(self) -> str:
        stem = Path(self.filename).stem or "upload"
        return f"{stem}_{self.style_name}{Path(self.result).suffix}"


class JobManager:
    """The pool, the records and the sweeper; every method is safe to call from any thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.root = config.data_dir / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.reserved = 0  # uploads in progress that hold a place
        self.pool = ThreadPoolExecutor(config.workers, thread_name_prefix="job")
        self.closing = threading.Event()
        self.sweeper = threading.Thread(target=self._sweep_loop, name="job-sweeper", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Load the records a previous run left, then start the sweeper."""
        waiting = self._load()
        for job in waiting:
            self.pool.submit(self._run, job)
        self.sweeper.start()

    def _load(self) -> list[Job]:
        """Every job folder: expired or unreadable ones deleted, interrupted ones failed; returns those to rerun."""
        now, waiting = time.time(), []
        known = {f.name for f in fields(Job)} - {"runtime"}
        for folder in sorted(self.root.iterdir()):
            try:
                data = json.loads((folder / RECORD).read_text())
                job = Job(**{key: value for key, value in data.items() if key in known})
            except (OSError, ValueError, TypeError):
                shutil.rmtree(folder, ignore_errors=True)  # an upload cut off by the stop, or debris
                continue
            if job.id != folder.name or (job.expires is not None and job.expires <= now):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if job.state == RUNNING:
                self._end(job, FAILED, "the server stopped while this job ran: upload it again", save=False)
            elif job.state == QUEUED:
                waiting.append(job)
            self.jobs[job.id] = job
            self.save(job)
        return waiting

    def close(self) -> None:
        """Stop every running session (its output is drained and discarded) and the pool; waiting jobs
        stay queued on disk and run after a restart."""
        self.closing.set()
        with self.lock:
            running = [job for job in self.jobs.values() if job.state == RUNNING]
        for job in running:
            job.runtime["shutdown"] = True
            self._stop_session(job)
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- records ---------------------------------------------------------------------------
    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def save(self, job: Job) -> None:
        """Write ``job.json`` atomically (a crash leaves the old record or the new one, never half)."""
        folder = self.folder(job.id)
        if not folder.is_dir():
            return
        record = {key: value for key, value in asdict(replace(job, runtime={})).items() if key != "runtime"}
        temporary = folder / f".{RECORD}.tmp"
        temporary.write_text(json.dumps(record, indent=1))
        os.replace(temporary, folder / RECORD)

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        with self.lock:
            job = self.jobs.get(job_id)
        if job is not None and job.expires is not None and job.expires <= time.time():
            self.delete(job_id)
            return None
        return job

    # -- admission -------------------------------------------------------------------------
    def reserve(self) -> str:
        """Hold a place for an upload about to arrive, or raise :class:`Full`; returns the new job's id,
        whose folder now exists."""
        with self.lock:
            busy = sum(job.state in (QUEUED, RUNNING) for job in self.jobs.values()) + self.reserved
            capacity = self.config.workers + self.config.queue
            if self.closing.is_set() or busy >= capacity:
                raise Full(f"the server is busy ({busy} jobs running or waiting, the most it takes is {capacity}): "
                           "try again when one has finished")
            self.reserved += 1
        job_id = new_id()
        self.folder(job_id).mkdir()
        return job_id

    def release(self, job_id: str) -> None:
        """Give back a place whose upload was refused, and remove what it wrote."""
        with self.lock:
            self.reserved -= 1
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def submit(self, job: Job) -> None:
        """Turn a reserved place into a queued job."""
        with self.lock:
            self.reserved -= 1
            self.jobs[job.id] = job
        self.save(job)
        self.pool.submit(self._run, job)

    # -- control ---------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting or running job (a finished one is left as it is); None if there is no such job."""
        job = self.get(job_id)
        if job is None:
            return None
        with self.lock:
            if job.state == QUEUED:
                self._end(job, CANCELLED, None)
                return job
            if job.state != RUNNING:
                return job
            job.runtime["cancel"] = True
        self._stop_session(job)
        return job

    def delete(self, job_id: str) -> bool:
        """Cancel if needed and delete everything of the job (a running one's folder goes when it stops)."""
        with self.lock:
            job = self.jobs.pop(job_id, None)
            if job is None:
                return False
            running = job.state == RUNNING
            job.runtime["deleted"] = True
            if job.state == QUEUED:
                job.state = CANCELLED
        if running:
            job.runtime["cancel"] = True
            self._stop_session(job)
        else:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return True

    def _stop_session(self, job: Job) -> None:
        session = job.runtime.get("session")
        if session is not None:
            session.stop()

    def _time_out(self, job: Job) -> None:
        job.runtime["timed_out"] = True
        self._stop_session(job)
        later = threading.Timer(10.0, self._stop_session, (job,))  # a second stop abandons what is queued
        later.daemon = True
        later.start()

    # -- running ---------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        """The worker: build the session as stream.py does, run it, record the outcome."""
        with self.lock:
            if job.state != QUEUED or self.closing.is_set():
                return
            job.state, job.started = RUNNING, time.time()
        self.save(job)
        timer = threading.Timer(self.config.job_timeout_s, self._time_out, (job,))
        timer.daemon = True
        timer.start()
        try:
            figures = self._session_run(job)
            self._finish(job, figures)
        except NStreamError as exc:
            self._finish(job, None, str(exc))
        except Exception as exc:  # noqa: BLE001 - a job's bug must not take the worker down
            log.exception("job %s failed", job.id)
            self._finish(job, None, f"internal error: {first_line(exc)}")
        finally:
            timer.cancel()
            job.runtime.pop("session", None)

    def _session_run(self, job: Job) -> dict[str, Any]:
        from nstream.session import build_session

        session = build_session(self.stream_config(job))
        job.runtime["session"] = session
        if any(job.runtime.get(flag) for flag in ("cancel", "timed_out", "shutdown")):  # asked while it was built
            session.stop()

        def progress(done: int, total: int | None) -> None:
            job.frames_done, job.frames_total = done, total

        return session.run(on_progress=progress)

    def stream_config(self, job: Job) -> Any:
        """The session's settings: the defaults stream.py has, with the job's style and strengths."""
        from nstream.config import EngineConfig, SourceConfig, StreamConfig, StyleConfig
        from nstream.temporal.config import TemporalConfig

        folder = self.folder(job.id)
        return StreamConfig(source=SourceConfig(input=str(folder / job.input)), outputs=[str(folder / job.result)],
                            style=StyleConfig(styles=[job.style], strength=job.strength),
                            engine=EngineConfig(engine=self.config.engine, device=self.config.device),
                            temporal=TemporalConfig(strength=job.temporal_strength))

    def _finish(self, job: Job, figures: dict[str, Any] | None, error: str | None = None) -> None:
        """Record how the run ended; anything but a complete result leaves no result file."""
        runtime = job.runtime
        if runtime.get("deleted"):
            shutil.rmtree(self.folder(job.id), ignore_errors=True)
            return
        if runtime.get("timed_out"):
            state, error = FAILED, f"stopped at the time limit of {self.config.job_timeout_s:g} s (--job-timeout)"
        elif runtime.get("cancel"):
            state, error = CANCELLED, None
        elif runtime.get("shutdown"):
            state, error = FAILED, "the server shut down while this job ran: upload it again"
        elif error is None and figures is not None and not figures.get("complete"):
            state, error = FAILED, "the input ended before its stated length: it is truncated or damaged"
        else:
            state = FAILED if error else DONE
        if figures is not None:
            job.frames_done = figures.get("frames_out", job.frames_done)
        if state != DONE:
            (self.folder(job.id) / job.result).unlink(missing_ok=True)
        with self.lock:
            self._end(job, state, error)

    def _end(self, job: Job, state: str, error: str | None, save: bool = True) -> None:
        job.state, job.error = state, error
        job.finished = time.time()
        job.expires = job.finished + self.config.ttl_s
        if save:
            self.save(job)

    # -- expiry ----------------------------------------------------------------------------
    def sweep(self) -> int:
        """Delete every job whose result has expired; returns how many."""
        now = time.time()
        with self.lock:
            expired = [job_id for job_id, job in self.jobs.items() if job.expires is not None and job.expires <= now]
        for job_id in expired:
            self.delete(job_id)
        return len(expired)

    def _sweep_loop(self) -> None:
        interval = min(30.0, max(0.5, self.config.ttl_s / 4))
        while not self.closing.wait(interval):
            try:
                self.sweep()
            except OSError as exc:
                log.warning("expiring jobs failed: %s", exc)

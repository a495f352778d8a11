"""The HTTP API (README, "Web app"): every answer is JSON, every refusal ``{"error": "one line"}``.

Job uploads are parsed as they stream (nstream/serve/uploads.py); the files are opened in a worker
thread so the event loop keeps answering while PyAV reads them.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from nstream.errors import NStreamError
from nstream.serve.jobs import TERMINAL, Full, Job
from nstream.serve.security import COOKIE, same_secret, session_value
from nstream.serve.uploads import DRAIN_LIMIT, UploadError, identify, receive_form

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/static/live.js": ("live.js", "text/javascript; charset=utf-8"),
              "/static/style.css": ("style.css", "text/css; charset=utf-8")}
FILE_FIELDS, TEXT_FIELDS = ("file", "style_image"), ("style", "strength", "temporal_strength")
EVENT_POLL_S = 0.25
RESULT_TYPES = {".mp4": "video/mp4", ".png": "image/png"}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def page(request: Request) -> Response:
    """The page and its two scripts and stylesheet: named files only, nothing listed."""
    name, media_type = PAGE_FILES[request.url.path]
    return FileResponse(STATIC / name, media_type=media_type)


async def styles(request: Request) -> JSONResponse:
    from nstream.temporal.blend import DEFAULT_STRENGTH, MAX_STRENGTH

    state = request.app.state
    return JSONResponse({**state.gallery.public(), "max_upload_mb": state.config.max_upload_mb,
                         "temporal_strength": {"default": DEFAULT_STRENGTH, "max": MAX_STRENGTH},
                         "live": state.live.available()})


async def thumbnail(request: Request) -> Response:
    gallery = request.app.state.gallery
    choice = gallery.get(request.path_params["style_id"])
    if choice is None:
        return error(404, f"unknown style {request.path_params['style_id']!r}: GET /api/styles lists them")
    try:
        path = await anyio.to_thread.run_sync(gallery.thumbnail, choice)
    except NStreamError as exc:  # a style that does not load here (say, a johnson network without PyTorch)
        return error(503, f"no thumbnail for {choice.id!r}: {exc}")
    return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "max-age=86400"})


async def login(request: Request) -> JSONResponse:
    """The page's login: the token in, an HttpOnly SameSite cookie out (derived from it, not the token)."""
    token = request.app.state.config.token
    try:
        given = str((await request.json()).get("token", ""))
    except (ValueError, AttributeError):
        return error(400, 'send {"token": "..."} as JSON')
    if token is None:
        return JSONResponse({"login": "not needed"})
    if not same_secret(given, token):
        await asyncio.sleep(0.5)  # guessing is slow
        return error(401, "wrong token")
    response = JSONResponse({"login": "ok"})
    response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict", path="/")
    return response


async def _drain(request: Request) -> None:
    """Read and drop the body (bounded), so a refused client reads its answer instead of a reset."""
    limit, seen = request.app.state.config.max_upload_bytes + DRAIN_LIMIT, 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            break


async def create_job(request: Request) -> JSONResponse:
    """``POST /api/jobs``: multipart ``file`` plus ``style`` or ``style_image``, ``strength``, ``temporal_strength``."""
    state = request.app.state
    try:
        job_id = state.jobs.reserve()
    except Full as exc:
        await _drain(request)
        return error(429, str(exc))
    folder = state.jobs.folder(job_id)
    try:
        form = await receive_form(request, folder, state.config.max_upload_bytes, FILE_FIELDS, TEXT_FIELDS)
        job = await anyio.to_thread.run_sync(prepare_job, form, job_id, folder, state.gallery)
    except UploadError as exc:
        state.jobs.release(job_id)
        return error(exc.status, exc.message)
    except ClientDisconnect:
        state.jobs.release(job_id)
        return error(400, "the upload was cut off before its end")
    except BaseException:
        state.jobs.release(job_id)
        raise
    state.jobs.submit(job)
    return JSONResponse(job.public(), status_code=201, headers={"location": f"/api/jobs/{job.id}"})


def _number(fields: dict[str, str], name: str, default: float, top: float) -> float:
    text = fields.get(name, "")
    if text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise UploadError(400, f"{name} {text!r} is not a number: use 0 to {top:g}") from None
    if not (math.isfinite(value) and 0 <= value <= top):
        raise UploadError(400, f"{name} {text!r} is out of range: use 0 to {top:g}")
    return value


def _style(form: Any, folder: Path, gallery: Any) -> tuple[str, str]:
    """(spec, display name) of the job's style: an offered style, or the uploaded painting."""
    from nstream.models.style_spec import MIN_PAINTING_SIDE

    name, painting = form.fields.get("style", ""), form.files.get("style_image")
    if bool(name) == bool(painting):
        raise UploadError(400, "give either style (a name from GET /api/styles) or style_image (a painting), one of them")
    if name:
        choice = gallery.get(name)
        if choice is None:
            raise UploadError(400, f"unknown style {name!r}: GET /api/styles lists the styles this server offers")
        return choice.id, Path(choice.id).stem
    if not gallery.arbitrary:
        raise UploadError(400, "this server has no arbitrary-style network: pick a style from GET /api/styles")
    media = identify(painting.path, "style image")
    if media.kind != "image":
        raise UploadError(415, "the style image is a video: give a still image of a painting")
    if min(media.width, media.height) < MIN_PAINTING_SIDE:
        raise UploadError(400, f"the style image is {media.width}x{media.height}: a painting needs at least "
                               f"{MIN_PAINTING_SIDE}x{MIN_PAINTING_SIDE} pixels")
    stored = painting.path.rename(folder / f"style{media.suffix}")
    return str(stored), Path(painting.filename).stem or "painting"


def prepare_job(form: Any, job_id: str, folder: Path, gallery: Any) -> Job:
    """Check every field and open every file of an upload; the job it describes (not yet queued)."""
    from nstream.temporal.blend import DEFAULT_STRENGTH, MAX_STRENGTH

    upload = form.files.get("file")
    if upload is None:
        raise UploadError(400, "no file in the upload: send the video or image as the field 'file'")
    strength = _number(form.fields, "strength", 1.0, 1.0)
    temporal = _number(form.fields, "temporal_strength", DEFAULT_STRENGTH, MAX_STRENGTH)
    spec, style_name = _style(form, folder, gallery)
    media = identify(upload.path)
    source = upload.path.rename(folder / f"input{media.suffix}")
    result = "result.mp4" if media.kind == "video" else "result.png"
    return Job(id=job_id, filename=upload.filename, kind=media.kind, style=spec, style_name=style_name,
               strength=strength, temporal_strength=temporal, input=source.name, result=result)


def _job(request: Request) -> Job | None:
    return request.app.state.jobs.get(request.path_params["job_id"])


def _no_job(request: Request) -> JSONResponse:
    return error(404, f"no job {request.path_params['job_id']!r}: it never existed, was deleted, or expired")


async def job_state(request: Request) -> JSONResponse:
    job = _job(request)
    return _no_job(request) if job is None else JSONResponse(job.public())


async def job_events(request: Request) -> Response:
    """Server-sent events: the job's state each time it changes, until it ends (then the stream closes)."""
    jobs = request.app.state.jobs
    if _job(request) is None:
        return _no_job(request)
    job_id = request.path_params["job_id"]

    async def events() -> Any:
        last, quiet = None, 0.0
        while not jobs.closing.is_set():
            job = jobs.get(job_id)
            state = job.public() if job is not None else {"id": job_id, "state": "deleted"}
            if state != last:
                yield f"event: state\ndata: {json.dumps(state)}\n\n"
                last, quiet = state, 0.0
            elif quiet >= 15:
                yield ": keep-alive\n\n"
                quiet = 0.0
            if job is None or job.state in TERMINAL:
                return
            await asyncio.sleep(EVENT_POLL_S)
            quiet += EVENT_POLL_S

    return StreamingResponse(events(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})


async def job_result(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return _no_job(request)
    if job.state != "done":
        return error(409, f"job {job.id} is {job.state}: the result is there once it is done")
    path = request.app.state.jobs.folder(job.id) / job.result
    disposition = "inline" if request.query_params.get("inline") else "attachment"
    return FileResponse(path, media_type=RESULT_TYPES.get(path.suffix, "application/octet-stream"),
                        filename=job.download_name(), content_disposition_type=disposition)


async def cancel_job(request: Request) -> JSONResponse:
    job = request.app.state.jobs.cancel(request.path_params["job_id"])
    return _no_job(request) if job is None else JSONResponse(job.public())


async def delete_job(request: Request) -> Response:
    if not request.app.state.jobs.delete(request.path_params["job_id"]):
        return _no_job(request)
    return Response(status_code=204)


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    text = {404: "not found", 405: "method not allowed"}.get(status, "bad request")
    return error(status, f"{text}: {request.method} {request.url.path}")


def api_routes() -> list[Route]:
    from nstream.serve import live

    return [
        *(Route(path, page, methods=["GET"]) for path in PAGE_FILES),
        Route("/api/styles", styles, methods=["GET"]),
        Route("/api/styles/{style_id:path}/thumbnail", thumbnail, methods=["GET"]),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_state, methods=["GET"]),
        Route("/api/jobs/{job_id}", delete_job, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/events", job_events, methods=["GET"]),
        Route("/api/jobs/{job_id}/result", job_result, methods=["GET"]),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        *live.routes(),
    ]

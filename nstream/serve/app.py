"""The application put together: routes, the job pool, the gallery, live calls, and the guard around them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from nstream.serve.gallery import Gallery
from nstream.serve.jobs import JobManager
from nstream.serve.live import LiveManager
from nstream.serve.routes import api_routes, not_found
from nstream.serve.security import Guard
from nstream.serve.settings import ServerConfig


def create_app(config: ServerConfig) -> Any:
    """The ASGI app for ``config`` (validated here): jobs from an earlier run load when it starts."""
    config.validate()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    gallery = Gallery(config.data_dir / "thumbs", config.styles)
    jobs = JobManager(config)
    live = LiveManager(config, gallery)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            await live.close_all()
            jobs.close()

    app = Starlette(routes=api_routes(), lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})
    app.state.config, app.state.gallery, app.state.jobs, app.state.live = config, gallery, jobs, live
    guarded: Any = Guard(app, config.token, config.cors_origins, extra_hosts=[config.host])
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        guarded = CORSMiddleware(guarded, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                                 allow_headers=["authorization", "content-type"])
    return guarded

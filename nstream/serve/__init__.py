"""The web app: ``python -m nstream serve`` (or ``nstream serve``).

A page at ``/`` (plain HTML, JavaScript and CSS shipped in ``static/``, no build step), the JSON API
it uses (README, "Web app"), jobs run through :func:`nstream.session.build_session` in a bounded
worker pool, and a live view: the browser's webcam over WebRTC (aiortc) through the same pipeline.

Starlette rather than FastAPI: the API is a dozen small routes whose inputs are a multipart upload
parsed by hand (to stream it to disk under a size limit) and a few JSON fields, so FastAPI's pydantic
models and OpenAPI pages would add a dependency tree without doing work here; Starlette is the part
of FastAPI that does (routing, responses, middleware). uvicorn runs it; python-multipart parses the
upload as it streams; aiortc speaks WebRTC in Python and hands over PyAV frames.

Modules: ``settings`` (the server's options), ``security`` (token, headers, origin and host checks),
``uploads`` (streamed, size-limited uploads, opened before they are accepted), ``jobs`` (the pool, the
on-disk job records, expiry), ``gallery`` (styles and their thumbnails), ``live`` (WebRTC),
``routes`` (the HTTP API), ``app`` (the application put together), ``cli`` (the command line).
"""

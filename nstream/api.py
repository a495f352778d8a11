"""The Python API: stylize a file in one call, or build a session to control it.

>>> import nstream
>>> nstream.stylize_video("clip.mp4", "out.mp4", style="starry_night")   # doctest: +SKIP
>>> config = nstream.StreamConfig(source=nstream.SourceConfig(input="clip.mp4"), outputs=["out.mp4"])
>>> session = nstream.build_session(config)                                # doctest: +SKIP
>>> figures = session.run(on_progress=lambda done, total: print(done, total))  # doctest: +SKIP

Both run exactly what ``stream.py`` runs (the same session code), so output, audio and timing match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nstream.config import EngineConfig, SourceConfig, StreamConfig, StyleConfig
from nstream.session import ProgressCallback, build_session
from nstream.temporal.config import TemporalConfig


def stylize_video(input: str, output: str | Sequence[str], style: str | Sequence[str] | None = None, *,
                  strength: float | None = None, temporal_strength: float | None = None, max_frames: int | None = None,
                  audio: bool | None = None, engine: str | None = None, device: str | None = None,
                  on_progress: ProgressCallback | None = None, config: StreamConfig | None = None) -> dict[str, Any]:
    """Stylize ``input`` (a video file, image, folder of images, camera index or URL) into ``output``
    (one or more: files, folder/, window, rtsp://..., null) and return the run's figures (as
    ``--stats-json`` writes them). ``style``: a style name, painting file, tf26-NN or blend, or several
    to cycle with ``config.style.every``; ``temporal_strength`` 0 turns the blend off; ``on_progress(done,
    total)`` is called a few times a second. ``config`` gives every other setting; a keyword argument
    given (not None) overrides its field, one left out keeps the config's (or the default). Raises
    :class:`nstream.errors.NStreamError` with one readable line for bad input."""
    base = config or StreamConfig()

    def given(**fields: Any) -> dict[str, Any]:
        return {name: value for name, value in fields.items() if value is not None}

    styles = [style] if isinstance(style, str) else list(style or base.style.styles)
    session_config = replace(
        base,
        source=replace(base.source, input=str(input), **given(max_frames=max_frames, audio=audio)),
        outputs=[output] if isinstance(output, str) else list(output),
        style=replace(base.style, styles=styles, **given(strength=strength)),
        engine=replace(base.engine, **given(engine=engine, device=device)),
        temporal=replace(base.temporal, **given(strength=temporal_strength)),
    )
    return build_session(session_config).run(on_progress=on_progress)


__all__ = ["EngineConfig", "SourceConfig", "StreamConfig", "StyleConfig", "TemporalConfig", "build_session",
           "stylize_video"]

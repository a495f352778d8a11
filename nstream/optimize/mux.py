"""Assemble finished frames into the output: the input's own timing and audio, never re-timed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np


def write_video(content: str, output: str, kind: str, frame: Callable[[int], np.ndarray], count: int, width: int,
                height: int, audio: bool = True, crf: int | None = None) -> None:
    """Write frames ``frame(0) .. frame(count - 1)`` to ``output`` (a video file or a ``folder``).

    The content is decoded again for its timestamps and audio packets, so the output plays in step
    with the input, frame for frame; the decoded pixels are replaced by the stylized ones.
    """
    from nstream.media.sinks import open_sink
    from nstream.media.sources import open_source

    source = open_source(content)
    try:
        info = replace(source.info, width=width, height=height)
        if not audio:
            info.audio_stream = None
        sink = open_sink(output if kind != "folder" else output.rstrip("/") + "/", crf=crf)
        try:
            sink.open(info)
            for decoded in source.frames():
                if decoded.index >= count:
                    break
                decoded.image = frame(decoded.index)
                sink.write(decoded)
        finally:
            sink.close()
    finally:
        source.close()

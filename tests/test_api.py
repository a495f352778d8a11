"""The Python API and the session it builds: the same code as stream.py, without argparse."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import ListSink, make_clip, probe, run_stream
from nstream.errors import NStreamError


def test_stylize_video_matches_stream_py_frame_for_frame(tmp_path, style_model):
    """Pixels compared on lossless PNG outputs (x264 in two busy processes may not give the same bitstream
    for the same frames); timing and audio on the mp4s."""
    import cv2

    import nstream

    clip = make_clip(tmp_path / "in.mp4", frames=10, size=(96, 64), audio=True)
    seen: list[tuple[int, int | None]] = []
    figures = nstream.stylize_video(str(clip), [str(tmp_path / "api.mp4"), f"{tmp_path / 'api'}/"], style=str(style_model),
                                    on_progress=lambda done, total: seen.append((done, total)))
    assert figures["frames_out"] == 10 and figures["complete"] and seen[-1] == (10, 10)
    assert run_stream("-i", str(clip), "-s", str(style_model), "-o", str(tmp_path / "cli.mp4"),
                      "-o", f"{tmp_path / 'cli'}/", "--no-dashboard").returncode == 0
    api, cli = probe(tmp_path / "api.mp4"), probe(tmp_path / "cli.mp4")
    assert api["frames"] == cli["frames"] == 10 and api["pts"] == cli["pts"]
    assert api["audio_seconds"] == pytest.approx(cli["audio_seconds"]) and api["audio_seconds"] > 0
    ours, theirs = sorted((tmp_path / "api").glob("*.png")), sorted((tmp_path / "cli").glob("*.png"))
    assert len(ours) == len(theirs) == 10
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b))), a.name


def test_a_session_with_the_callers_own_sink_and_a_stop_from_another_thread(tmp_path, style_model):
    from nstream.config import SourceConfig, StreamConfig, StyleConfig
    from nstream.session import build_session

    clip = make_clip(tmp_path / "in.mp4", frames=200, size=(64, 48), audio=False)
    config = StreamConfig(source=SourceConfig(input=str(clip)), style=StyleConfig(styles=[str(style_model)]))
    sink = ListSink()
    session = build_session(config, sinks=[sink])
    assert [stage.name for stage in session.stages] == ["network", "temporal"]
    threading.Timer(0.5, session.stop).start()
    figures = session.run()
    assert sink.closed and 0 < len(sink.frames) < 200 and not figures["complete"]
    assert [f.index for f in sink.frames] == list(range(len(sink.frames)))


@pytest.mark.parametrize("change, message", [
    ({"temporal": {"strength": 2.0}}, "temporal strength 2.0 is out of range"),
    ({"style": {"scale": 9.0}}, "--scale 9.0 is out of range"),
    ({"engine": {"workers": 0}}, "--workers 0: use 1 or more"),
    ({"engine": {"engine": "warp-drive"}}, "unknown engine 'warp-drive'"),
    ({"source": {"loop": 0}}, "--loop 0: use 1 or more"),
])
def test_config_errors_are_one_readable_line_before_anything_opens(change, message):
    from dataclasses import replace

    from nstream.config import StreamConfig
    from nstream.session import build_session

    config = StreamConfig()
    for part, fields in change.items():
        config = replace(config, **{part: replace(getattr(config, part), **fields)})
    with pytest.raises(NStreamError, match=message):
        build_session(config)


def test_a_missing_input_is_an_error_and_nothing_is_left_open(tmp_path, style_model):
    import nstream

    with pytest.raises(NStreamError, match="input not found"):
        nstream.stylize_video(str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"), style=str(style_model))
    assert not (tmp_path / "o.mp4").exists()


def test_keywords_left_out_keep_the_configs_settings(tmp_path, style_model):
    import nstream
    from nstream.config import EngineConfig, SourceConfig, StreamConfig

    clip = make_clip(tmp_path / "in.mp4", frames=8, size=(64, 48), audio=False)
    config = StreamConfig(source=SourceConfig(input="ignored", max_frames=3), engine=EngineConfig(engine="torch"))
    figures = nstream.stylize_video(str(clip), str(tmp_path / "o.mp4"), style=str(style_model), config=config)
    assert figures["frames_out"] == 3 and figures["engine"] == "torch"
    figures = nstream.stylize_video(str(clip), str(tmp_path / "o.mp4"), style=str(style_model), config=config,
                                    max_frames=5)
    assert figures["frames_out"] == 5

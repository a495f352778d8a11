"""Batch jobs on a real Ray cluster: a head and a second node process started by the tests on this
machine (ray.cluster_utils starts real raylets; Ray advertises the machine's own address, and a
driver cannot join a loopback-only head because Ray rewrites 127.0.0.1 to that address).

The reference is always the single-process run (stream.py): the distributed output must have the
same frames, pixel for pixel (same code, same engine, same thread count on one machine), the same
pts and the same audio.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, free_port, probe, run_stream

ray = pytest.importorskip("ray", reason="the cluster extra (pip install 'nstream[cluster]') is not installed")


def pattern(index: int, width: int, height: int, shot: int) -> np.ndarray:
    """A smooth texture moving a pixel a frame; shot 1 is darker and bluer (a hard cut: histogram distance
    about 0.7, ordinary motion about 0.03)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.sin((x + index) / 6.0) * 100 + 128
    g = np.cos((y + index) / 9.0) * 100 + 128
    b = np.sin((x + y + 2 * index) / 11.0) * 100 + 128
    image = np.stack([r, g, b], axis=-1).astype(np.uint8)
    return (image * np.array([0.3, 0.6, 1.0], np.float32)).astype(np.uint8) if shot else image


def shot_clip(path: Path, frames: int = 24, cut: int = 6, size: tuple[int, int] = (64, 48), fps: int = 25) -> Path:
    """A clip with one scene cut at ``cut`` and a long shot after it, with a sine audio track."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height, int(i >= cut)), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = int(48000 * frames / fps)
        wave = (0.3 * np.sin(2 * math.pi * 440 * np.arange(samples) / 48000.0)).astype(np.float32)[None, :]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(wave[:, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


def batch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nstream", "batch", *args]


def run_batch(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(batch_command(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def assert_same_video(result: Path, reference: Path) -> None:
    """Same frame count, pts, audio length, and the same pictures in the same order.

    The frames handed to the encoder are the same bytes (the work folder's PNGs equal stream.py's own
    PNG output, checked by hand under load), but libx264 in two busy processes does not always encode
    them to the same bitstream (seen: a grey level here and there), so the decoded pictures are compared
    by PSNR, per frame, far above what any wrong frame, order or blend would reach."""
    got, want = probe(result), probe(reference)
    assert got["frames"] == want["frames"] and got["pts"] == want["pts"]
    assert want["audio_seconds"] > 0 and got["audio_seconds"] == pytest.approx(want["audio_seconds"])
    for index, (a, b) in enumerate(zip(decoded(result), decoded(reference), strict=True)):
        error = float(np.mean((a.astype(float) - b) ** 2))
        assert error == 0 or 10 * np.log10(255**2 / error) > 40, f"frame {index} differs by up to {np.abs(a.astype(int) - b).max()}"


def reference(clip: Path, style: Path, out: Path) -> Path:
    result = run_stream("-i", str(clip), "-s", str(style), "-o", str(out), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and a second node, one CPU each, small object stores; shut down (its own processes) at the end."""
    from ray.cluster_utils import Cluster

    store = 80 * 1024 * 1024
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store,
                                                              "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=store)
        yield cluster.address
    finally:
        cluster.shutdown()


def test_shots_are_where_the_temporal_stage_resets(tmp_path):
    from nstream.cluster.shots import group_shots, scan_shots

    scan = scan_shots(str(shot_clip(tmp_path / "in.mp4")), 0.3)
    assert scan.starts == [0, 6] and scan.count == 24 and scan.shots() == [(0, 6), (6, 24)]
    assert group_shots([(0, 2), (2, 3), (3, 10), (10, 11)], 3) == [(0, 3), (3, 11)]


def test_batch_in_one_process_gives_stream_pys_file(tmp_path, style_model):
    clip = shot_clip(tmp_path / "cut.mp4")
    want = reference(clip, style_model, tmp_path / "ref.mp4")
    result = run_batch(str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--split", "shots",
                       "--piece-frames", "1", "--stats-json", str(tmp_path / "stats.json"))
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "stats.json").read_text())
    assert figures["frames"] == 24 and [p["piece"] for p in figures["pieces"]] == ["cut.mp4[0:6]", "cut.mp4[6:24]"]
    assert sorted(p.name for p in (next((tmp_path / "out" / ".nstream-work").iterdir()) / "pieces").glob("*.done")) == \
        ["000000-000006.done", "000006-000024.done"]
    assert_same_video(tmp_path / "out" / "cut.mp4", want)


@pytest.mark.slow
def test_batch_on_a_two_node_cluster_matches_the_single_process_run(tmp_path, style_model, ray_cluster):
    clip = shot_clip(tmp_path / "cut.mp4")
    other = shot_clip(tmp_path / "short.mp4", frames=8, cut=20)  # a second file, not split: one whole session
    result = run_batch(str(clip), str(other), "-s", str(style_model), "--out", str(tmp_path / "out"), "--split",
                       "shots", "--piece-frames", "1", "--cluster", ray_cluster)
    assert result.returncode == 0, result.stderr
    assert "cluster: the Ray cluster at" in result.stderr and "frames 32/32 (100%)" in result.stderr
    assert_same_video(tmp_path / "out" / "cut.mp4", reference(clip, style_model, tmp_path / "ref.mp4"))
    assert_same_video(tmp_path / "out" / "short.mp4", reference(other, style_model, tmp_path / "ref_short.mp4"))


def frames_in(work: Path) -> dict[str, tuple[int, int]]:
    """Finished frames of a work folder: name -> (inode, mtime); a frame written again gets a new inode."""
    found = {}
    for path in work.glob("*/frames/[0-9]*.png"):
        stat = path.stat()
        found[path.name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def wait_for(condition, what: str, proc: subprocess.Popen, limit_s: float = 300) -> None:
    """Poll ``condition`` until it holds; fail at once when the driver ended first."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if proc.poll() is not None:
            output = proc.communicate()
            pytest.fail(f"the batch ended (exit {proc.returncode}) before {what}: {output}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


LONG = {"frames": 90, "cut": 4, "size": (160, 120)}


@pytest.mark.slow
def test_a_worker_killed_mid_piece_the_job_finishes_and_no_finished_frame_is_redone(tmp_path, style_model,
                                                                                     ray_cluster):
    clip = shot_clip(tmp_path / "long.mp4", **LONG)
    work = tmp_path / "work"
    proc = subprocess.Popen(batch_command(str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--work",
                                          str(work), "--split", "shots", "--piece-frames", "1", "--cluster", ray_cluster),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(frames_in(work)) >= LONG["cut"] + 5, "frames of the long shot", proc)
        label = next(work.glob("*/pieces/000004-000090.worker")).read_text().strip()
        before = frames_in(work)
        os.kill(int(label.rsplit(":", 1)[1]), signal.SIGKILL)
        assert not list(work.glob("*/pieces/000004-000090.done")), "the piece finished before the kill"
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    after = frames_in(work)
    assert len(after) == LONG["frames"]
    assert {name: after[name] for name in before} == before  # not one finished frame written again
    assert next(work.glob("*/pieces/000004-000090.worker")).read_text().strip() != label  # another worker took over
    assert_same_video(tmp_path / "out" / "long.mp4", reference(clip, style_model, tmp_path / "ref.mp4"))


@pytest.mark.slow
def test_the_driver_stopped_and_started_again_resumes(tmp_path, style_model, ray_cluster):
    clip = shot_clip(tmp_path / "long.mp4", **LONG)
    work = tmp_path / "work"
    args = (str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--work", str(work), "--split", "shots",
            "--piece-frames", "1", "--cluster", ray_cluster)
    proc = subprocess.Popen(batch_command(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(frames_in(work)) >= LONG["cut"] + 5, "frames of the long shot", proc)
    finally:
        proc.kill()  # SIGKILL: no chance to tidy up
        proc.wait()
    time.sleep(1.0)  # the job's workers go with their driver; a frame they finish meanwhile is whole
    before = frames_in(work)
    assert len(before) < LONG["frames"]
    result = run_batch(*args)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr or "frames" in result.stderr
    after = frames_in(work)
    assert len(after) == LONG["frames"] and {name: after[name] for name in before} == before
    assert_same_video(tmp_path / "out" / "long.mp4", reference(clip, style_model, tmp_path / "ref.mp4"))


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path, style_model):
    clip = shot_clip(tmp_path / "cut.mp4", frames=4)
    with_port = run_batch(str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--cluster", "127.0.0.1:9")
    assert with_port.returncode == 2
    assert_one_line_error(with_port, "cannot reach the Ray cluster at 127.0.0.1:9")
    client = run_batch(str(clip), "--out", str(tmp_path / "out"), "--cluster", "ray://127.0.0.1:9")
    assert client.returncode == 2
    assert_one_line_error(client, "cannot reach")
    for malformed in ("ray://", "ray://127.0.0.1:http"):
        nonsense = run_batch(str(clip), "--out", str(tmp_path / "out"), "--cluster", malformed)
        assert nonsense.returncode == 2
        assert_one_line_error(nonsense, f"--cluster {malformed}: use auto, ray://HOST:PORT or HOST:PORT")
    assert not (tmp_path / "out" / "cut.mp4").exists()


def test_without_the_extra_cluster_is_one_line_naming_it(tmp_path):
    clip = shot_clip(tmp_path / "cut.mp4", frames=4)
    code = ("import sys; sys.modules['ray'] = None; from nstream.cli import main; "
            f"sys.exit(main(['batch', {str(clip)!r}, '--out', {str(tmp_path / 'out')!r}, '--cluster', 'auto']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert_one_line_error(result, "--cluster needs Ray", "pip install 'nstream[cluster]'")


def test_bad_batch_input_is_one_line(tmp_path):
    result = run_batch(str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert_one_line_error(result, "input not found")
    clip = shot_clip(tmp_path / "cut.mp4", frames=4)
    result = run_batch(str(clip), "--out", str(tmp_path / "out"), "-o", "x.mp4")
    assert result.returncode == 2
    assert_one_line_error(result, "--out")


# -- offline.py: shots and chunks as tasks -------------------------------------------------------

OFFLINE_FAST = ["-z", "32", "-i", "8,4", "--loss-net", "random", "--threads", "1", "--no-progress", "-e", "0",
                "--chunk", "4", "--warmup", "1"]


def stripes(path: Path) -> Path:
    y, x = np.mgrid[0:64, 0:64]
    lines = ((np.sin((x + y) / 2.0) > 0) * 200 + 30).astype(np.uint8)
    av.VideoFrame.from_ndarray(np.stack([lines, 255 - lines, np.full_like(lines, 90)], axis=-1),
                               format="rgb24").to_image().save(path)
    return path


def offline_command(clip: Path, style: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "offline.py"), "-c", str(clip), "-s", str(style), "-o", str(output),
            *OFFLINE_FAST, *extra]


def finished(work: Path) -> dict[str, np.ndarray]:
    from nstream.optimize.workfolder import read_png

    return {path.name: read_png(path) for path in sorted((work / "pass1").glob("[0-9]*.png"))}


def test_spans_are_shots_cut_into_chunks_that_warm_up_inside_their_shot():
    from nstream.cluster.offline import Span, plan_spans

    assert plan_spans(14, [0, 4], 4, 1) == [Span(0, 4), Span(4, 8), Span(8, 12, 1), Span(12, 14, 1)]
    assert plan_spans(10, [0, 9], None, 2) == [Span(0, 9), Span(9, 10)]
    assert plan_spans(9, [0], 4, 3) == [Span(0, 4), Span(4, 8, 3), Span(8, 9, 3)]


@pytest.mark.slow
def test_offline_by_shot_on_the_cluster_gives_the_single_process_frames(tmp_path, ray_cluster):
    clip, style = shot_clip(tmp_path / "cut.mp4", frames=14, cut=4), stripes(tmp_path / "stripes.png")
    here = subprocess.run(offline_command(clip, style, tmp_path / "here.mp4", "--shots"), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert here.returncode == 0, here.stderr
    there = subprocess.run(offline_command(clip, style, tmp_path / "there.mp4", "--cluster", ray_cluster), cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert there.returncode == 0, there.stderr
    assert "2 shot(s), 4 span(s)" in there.stderr
    want, got = finished(tmp_path / "here.mp4.work"), finished(tmp_path / "there.mp4.work")
    assert list(got) == list(want) and len(got) == 14
    for name in want:  # same seed, same code, one torch thread each: the same pixels
        assert np.array_equal(got[name], want[name]), name
    assert sorted(p.name for p in (tmp_path / "there.mp4.work" / "warmup").iterdir()) == ["000008-000012",
                                                                                         "000012-000014"]
    a, b = probe(tmp_path / "here.mp4"), probe(tmp_path / "there.mp4")
    assert a["frames"] == b["frames"] == 14 and a["pts"] == b["pts"] == probe(clip)["pts"]
    assert b["audio_seconds"] == pytest.approx(a["audio_seconds"]) and b["audio_seconds"] > 0


def pass1_files(work: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in list(work.glob("pass1/[0-9]*.png")) + list(work.glob("warmup/*/pass1/[0-9]*.png")):
        stat = path.stat()
        found[str(path.relative_to(work))] = (stat.st_ino, stat.st_mtime_ns)
    return found


@pytest.mark.slow
def test_offline_worker_killed_and_driver_restarted_nothing_finished_is_rendered_again(tmp_path, ray_cluster):
    clip, style = shot_clip(tmp_path / "cut.mp4", frames=14, cut=4), stripes(tmp_path / "stripes.png")
    work = tmp_path / "out.mp4.work"
    command = offline_command(clip, style, tmp_path / "out.mp4", "--cluster", ray_cluster)
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # a worker killed in the middle of span [4, 8): Ray runs the task again, it goes on from there
        wait_for(lambda: (work / "pass1" / "000005.png").exists(), "two frames of span [4, 8)", proc)
        before = pass1_files(work)
        os.kill(int((work / "pieces" / "000004-000008.worker").read_text().strip().rsplit(":", 1)[1]), signal.SIGKILL)
        wait_for(lambda: len(pass1_files(work)) >= len(before) + 2, "frames after the kill", proc)
        during = pass1_files(work)
    finally:  # then the driver itself killed
        proc.kill()
        proc.wait()
    time.sleep(1.0)
    assert not (tmp_path / "out.mp4").exists()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    after = pass1_files(work)
    assert {name: after[name] for name in during} == during  # not one finished frame rendered again
    assert {name: after[name] for name in before} == before
    assert len(finished(work)) == 14 and probe(tmp_path / "out.mp4")["frames"] == 14


def test_progress_counts_a_retried_task_once_and_shows_rates_and_time_left():
    from nstream.cluster.progress import Board, format_line, format_seconds

    board = Board()
    board.report("a", "10.0.0.1:11", 4, 4, since=time.time() - 2.0)
    board.report("b", "10.0.0.2:22", 3, 3, since=time.time() - 1.0)
    board.report("a", "10.0.0.2:33", 6, 2, since=time.time() - 1.0)  # task a again on another worker, 4 kept
    snapshot = board.snapshot()
    assert sum(done for _, done in snapshot["tasks"].values()) == 9
    line = format_line(9, 20, snapshot, elapsed=3.0)
    assert line.startswith("frames 9/20 (45%) | 3 worker(s): 10.0.0.1:11 ")
    assert " f/s" in line and "ETA 4s" in line
    assert format_seconds(3725) == "1h02m" and format_seconds(65) == "1m05s" and format_seconds(None) == "?"


def test_the_output_fades_from_one_chunk_to_the_next_over_the_warm_up_frames():
    from nstream.cluster.offline import Span, seam_weight

    spans = [Span(0, 6), Span(6, 12, 2), Span(12, 14, 2)]
    assert [seam_weight(spans, i)[1] for i in range(3, 8)] == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 0.0, 0.0]
    assert seam_weight(spans, 4)[0] == spans[1] and seam_weight(spans, 11)[0] == spans[2]


def test_offline_split_refuses_max_frames_in_one_line(tmp_path):
    clip, style = shot_clip(tmp_path / "cut.mp4", frames=4, cut=2), stripes(tmp_path / "stripes.png")
    result = subprocess.run(offline_command(clip, style, tmp_path / "out.mp4", "--shots", "--max-frames", "2"), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert_one_line_error(result, "--max-frames", "Ctrl-C")


@pytest.mark.slow
def test_cluster_auto_starts_a_local_ray_for_the_run_and_gives_the_same_file(tmp_path, style_model):
    clip = shot_clip(tmp_path / "cut.mp4", frames=12, cut=5)
    result = run_batch(str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--split", "shots",
                       "--piece-frames", "1", "--cluster", "auto", "--num-cpus", "2")
    assert result.returncode == 0, result.stderr
    assert "cluster: a local Ray started for this run, 2 CPU(s)" in result.stderr
    if importlib.util.find_spec("aiohttp"):  # ray[default], the extra: Ray runs its dashboard, the link is printed
        link = re.search(r"2 CPU\(s\), 0 GPU\(s\); dashboard: (http://127\.0\.0\.1:\d+)\n", result.stderr)
        assert link, result.stderr
    assert_same_video(tmp_path / "out" / "cut.mp4", reference(clip, style_model, tmp_path / "ref.mp4"))


def test_offline_with_an_unreachable_cluster_is_one_line_before_any_work(tmp_path):
    clip, style = shot_clip(tmp_path / "cut.mp4", frames=4, cut=2), stripes(tmp_path / "stripes.png")
    result = subprocess.run(offline_command(clip, style, tmp_path / "out.mp4", "--cluster", "127.0.0.1:9"), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert_one_line_error(result, "cannot reach the Ray cluster at 127.0.0.1:9")
    assert not (tmp_path / "out.mp4.work").exists()  # nothing decoded, no loss network built


# -- the Ray client (ray://) and the dashboard link ----------------------------------------------


def wait_accepting(port: int, timeout: float = 120.0) -> None:
    """Wait until 127.0.0.1:port takes connections: the head starts its Ray client server as a separate
    process and does not wait for it, so on a loaded machine the port opens seconds after Cluster()."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def client_cluster():
    """A head serving the Ray client and the dashboard on free loopback ports, one CPU; yields the ray://
    address and the dashboard link. cluster_utils stops exactly the processes it started at the end
    (``ray stop`` would stop every Ray on the machine, other jobs' included)."""
    from ray.cluster_utils import Cluster

    client, dashboard = free_port(), free_port()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "ray_client_server_port": client,
        "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard})
    try:
        wait_accepting(client)
        yield f"ray://127.0.0.1:{client}", f"http://127.0.0.1:{dashboard}"
    finally:
        cluster.shutdown()


def answers_http(url: str) -> bool:
    """Whether a web server answers at ``url`` (any status: the dashboard may ask for Ray's token)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(url, timeout=30):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_batch_through_the_ray_client_gives_stream_pys_file_and_prints_the_dashboard(tmp_path, style_model,
                                                                                     client_cluster):
    address, dashboard = client_cluster
    clip = shot_clip(tmp_path / "cut.mp4", frames=12, cut=5)
    result = run_batch(str(clip), "-s", str(style_model), "--out", str(tmp_path / "out"), "--split", "shots",
                       "--piece-frames", "1", "--cluster", address)
    assert result.returncode == 0, result.stderr
    assert f"cluster: the Ray cluster at {address}, 1 CPU(s), 0 GPU(s); dashboard: {dashboard}\n" in result.stderr
    assert "frames 12/12 (100%)" in result.stderr and "Traceback" not in result.stderr
    assert "SIGTERM handler" not in result.stderr  # the client server's own warning, relayed, is left out
    assert answers_http(dashboard), f"nothing serves the printed dashboard link {dashboard}"
    assert_same_video(tmp_path / "out" / "cut.mp4", reference(clip, style_model, tmp_path / "ref.mp4"))


@pytest.mark.slow
def test_a_ray_address_where_no_ray_client_answers_is_one_line_and_exit_2(tmp_path):
    """Something listens but is no Ray client server (a wrong port): Ray retries for its own timeout, then
    one line that names the client port, without Ray's warning around it."""
    clip = shot_clip(tmp_path / "cut.mp4", frames=4)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = f"ray://127.0.0.1:{listener.getsockname()[1]}"
        result = run_batch(str(clip), "--out", str(tmp_path / "out"), "--cluster", address)
    assert result.returncode == 2
    assert_one_line_error(result, f"cannot join the Ray cluster at {address}", "--ray-client-server-port")
    assert "Warning" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out" / "cut.mp4").exists()


def test_a_remote_heads_loopback_dashboard_is_said_to_be_on_the_head():
    from nstream.cluster.connect import dashboard_link

    assert dashboard_link("", "ray://198.51.100.7:10001", False) == ""
    assert dashboard_link("127.0.0.1:8265", "auto", True) == "http://127.0.0.1:8265"
    assert dashboard_link("127.0.0.1:8266", "ray://127.0.0.1:10001", False) == "http://127.0.0.1:8266"
    assert dashboard_link("198.51.100.7:8265", "ray://198.51.100.7:10001", False) == "http://198.51.100.7:8265"
    remote = dashboard_link("127.0.0.1:8265", "ray://198.51.100.7:10001", False)
    assert remote.startswith("http://127.0.0.1:8265 on the head node") and "ssh -L 8265:localhost:8265 198.51.100.7" in remote

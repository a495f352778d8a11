"""The web app's HTTP API against a real ``nstream serve`` (uvicorn) on loopback: every endpoint, the
bad inputs, the queue's 429, cancel, the time limit, expiry, a restart, the token and the guard."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, make_clip, probe
from serve_server import install_styles, requests, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def styles(tmp_path_factory, style_model, red_style_model) -> Path:
    return install_styles(tmp_path_factory.mktemp("serve-styles"), style_model, red_style_model)


@pytest.fixture(scope="module")
def server(tmp_path_factory, styles):
    with serving(tmp_path_factory.mktemp("serve") / "data", styles, "--max-upload-mb", "1") as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=10, size=(64, 48), audio=True)


def png_bytes(width: int = 40, height: int = 36, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_styles_list_and_thumbnails(server):
    listing = server.api("GET", "/api/styles").json()
    assert [s["id"] for s in listing["styles"]] == ["seeded", "red"]
    assert listing["max_upload_mb"] == 1 and "style_image" in listing and listing["temporal_strength"]["max"] == 0.8
    thumb = server.api("GET", "/api/styles/red/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB")).astype(int)
    assert picture.shape == (108, 192, 3) and picture[..., 0].mean() > 230 and picture[..., 1:].mean() < 25
    assert server.api("GET", "/api/styles/nope/thumbnail").status_code == 404


def test_a_video_job_end_to_end_matches_the_python_api(server, clip, tmp_path, style_model):
    import nstream

    created = server.submit(clip, strength="1", temporal_strength="0.7")
    assert created.status_code == 201, created.text
    job = created.json()
    assert created.headers["location"] == f"/api/jobs/{job['id']}" and len(job["id"]) == 22
    states = server.events(job["id"])
    progress = [s["progress"] for s in states]
    assert states[-1]["state"] == "done" and progress == sorted(progress) and progress[-1] == 1.0
    assert states[-1]["frames_done"] == states[-1]["frames_total"] == 10
    result = server.api("GET", f"/api/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert 'attachment; filename="clip_seeded.mp4"' in result.headers["content-disposition"]
    (tmp_path / "served.mp4").write_bytes(result.content)
    nstream.stylize_video(str(clip), str(tmp_path / "api.mp4"), style=str(style_model), temporal_strength=0.7)
    served, direct = probe(tmp_path / "served.mp4"), probe(tmp_path / "api.mp4")
    assert served["frames"] == direct["frames"] == 10 and served["pts"] == direct["pts"]
    assert served["audio_codec"] == "aac" and served["audio_seconds"] == pytest.approx(direct["audio_seconds"])
    assert served["audio_seconds"] > 0.3
    from nstream.temporal.evaluate import read_frames

    served_frames = np.stack(read_frames(str(tmp_path / "served.mp4"), 10)).astype(float)
    direct_frames = np.stack(read_frames(str(tmp_path / "api.mp4"), 10)).astype(float)
    # the same picture; not always bit-exact: x264 is not deterministic while the CPU is contended
    # (docs/BENCHMARKS.md, "Web app"), and other workers share this machine
    assert 10 * np.log10(255**2 / max(np.mean((served_frames - direct_frames) ** 2), 1e-9)) > 30
    inline = server.api("GET", f"/api/jobs/{job['id']}/result?inline=1")
    assert inline.headers["content-disposition"].startswith("inline")


def test_an_image_job_and_a_painting_as_the_style(server):
    made = server.api("POST", "/api/jobs", files={"file": ("photo.png", png_bytes())}, data={"style": "red"})
    assert made.status_code == 201, made.text
    assert server.wait(made.json()["id"])["state"] == "done"
    result = server.api("GET", f"/api/jobs/{made.json()['id']}/result")
    assert result.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(result.content)).convert("RGB")).astype(int)
    assert picture.shape == (36, 40, 3) and picture[..., 0].min() > 240 and picture[..., 1:].max() < 15
    if not server.api("GET", "/api/styles").json()["style_image"]:
        pytest.skip("no arbitrary-style network installed")
    painting = (ROOT / "nstream" / "paintings" / "wave.jpg").read_bytes()
    made = server.api("POST", "/api/jobs", files={"file": ("photo.png", png_bytes(64, 48)),
                                                  "style_image": ("../../etc/passwd.jpg", painting)})
    assert made.status_code == 201, made.text
    done = server.wait(made.json()["id"])
    assert done["state"] == "done" and done["style"] == "passwd" and done["filename"] == "photo.png"
    assert not list(server.data.rglob("passwd*"))  # the client's name is display text, never a path


def cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def faststart_clip(folder: Path) -> Path:
    """A clip whose index comes first, so a truncated copy still opens: its missing end must be found."""
    import av

    plain = make_clip(folder / "plain.mp4", frames=40, size=(64, 48), audio=False)
    out = folder / "fast.mp4"
    with av.open(str(plain)) as src, av.open(str(out), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return out


def test_bad_inputs_get_one_clear_4xx_and_the_server_keeps_serving(server, clip, tmp_path):
    good = server.submit(clip)
    assert good.status_code == 201
    done = server.wait(good.json()["id"])
    before = server.api("GET", f"/api/jobs/{done['id']}/result").content
    fast = faststart_clip(tmp_path)
    video = clip.read_bytes()
    cases = [
        ({"file": ("notes.mp4", b"this is a text file, not a video\n" * 20)}, {"style": "seeded"}, 415, "not a video or image"),
        ({"file": ("cut.mp4", cut(video, 0.6))}, {"style": "seeded"}, 415, "not a video or image"),
        ({"file": ("cut.mp4", cut(fast.read_bytes(), 0.5))}, {"style": "seeded"}, 400, "truncated"),
        ({"file": ("empty.mp4", b"")}, {"style": "seeded"}, 400, "empty"),
        ({"file": ("big.mp4", video + b"\0" * (1024 * 1024))}, {"style": "seeded"}, 413, "larger than this server's limit"),
        ({"file": ("clip.mp4", video)}, {"style": "starry_nite"}, 400, "unknown style 'starry_nite'"),
        ({"file": ("clip.mp4", video), "style_image": ("p.jpg", b"no picture here")}, {}, 415, "style image"),
        ({"file": ("clip.mp4", video), "style_image": ("p.png", png_bytes(8, 8))}, {}, 400, "at least 32x32"),
        ({"file": ("clip.mp4", video)}, {}, 400, "give either style"),
        ({"file": ("clip.mp4", video)}, {"style": "seeded", "strength": "2"}, 400, "strength '2' is out of range"),
        ({"file": ("clip.mp4", video)}, {"style": "seeded", "temporal_strength": "lots"}, 400, "not a number"),
        ({"file": ("clip.mp4", video)}, {"style": "seeded", "colour": "blue"}, 400, "unexpected form field 'colour'"),
        ({}, {"style": "seeded"}, 400, "no file in the upload"),
    ]
    kept = {p.name for p in (server.data / "jobs").iterdir()}
    for files, data, status, message in cases:
        if not files:  # a multipart body with the style field only
            files, data = {"style": (None, data["style"])}, {}
        answer = server.api("POST", "/api/jobs", files=files, data=data)
        assert answer.status_code == status, (message, answer.text)
        assert message.lower() in answer.json()["error"].lower() and "\n" not in answer.json()["error"], answer.text
    not_multipart = server.api("POST", "/api/jobs", json={"file": "clip.mp4"})
    assert not_multipart.status_code == 415 and "multipart/form-data" in not_multipart.json()["error"]
    assert {p.name for p in (server.data / "jobs").iterdir()} == kept  # refused uploads leave nothing
    assert server.api("GET", f"/api/jobs/{done['id']}/result").content == before
    assert server.submit(clip).status_code == 201


def test_unknown_ids_and_paths_are_404_and_nothing_is_listed(server):
    for path in ("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA", "/api/jobs/..%2f..%2fetc", "/api/jobs/x/result", "/static/",
                 "/static/../serve/jobs.py", "/api/live/nope", "/nstream/serve/static/app.js"):
        answer = server.api("GET", path)
        assert answer.status_code == 404, path
        assert "error" in answer.json()
    assert server.api("GET", "/api/jobs").status_code == 405  # no listing of jobs
    assert server.api("DELETE", "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_security_headers_and_the_host_and_origin_checks(server, clip):
    for path in ("/", "/static/app.js", "/api/styles"):
        headers = server.api("GET", path).headers
        assert headers["x-content-type-options"] == "nosniff" and "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and "access-control-allow-origin" not in headers
    assert server.api("GET", "/api/styles").headers["cache-control"] == "no-store"
    rebound = server.api("GET", "/api/styles", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 400 and "Host" in rebound.json()["error"]
    with open(clip, "rb") as handle:
        foreign = server.api("POST", "/api/jobs", files={"file": handle}, data={"style": "seeded"},
                             headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]
    preflight = server.api("OPTIONS", "/api/jobs", headers={"Origin": "http://evil.example",
                                                           "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    same = server.api("POST", "/api/jobs", files={"file": ("c.mp4", clip.read_bytes())}, data={"style": "seeded"},
                      headers={"Origin": server.url})
    assert same.status_code == 201


def long_clip(folder: Path) -> Path:
    return make_clip(folder / "long.mp4", frames=400, size=(64, 48), audio=False)


def test_a_full_queue_answers_429_and_cancel_and_delete_work(tmp_path, styles, clip):
    with_long = long_clip(tmp_path)
    with serving(tmp_path / "data", styles, "--workers", "1", "--queue", "1") as server:
        running = server.submit(with_long).json()["id"]
        waiting = server.submit(clip).json()["id"]
        refused = server.submit(clip)
        assert refused.status_code == 429 and "busy" in refused.json()["error"], refused.text
        server.wait(running, until=("running",))
        assert server.api("GET", f"/api/jobs/{running}/result").status_code == 409
        assert server.api("POST", f"/api/jobs/{running}/cancel").status_code == 200
        cancelled = server.wait(running)
        assert cancelled["state"] == "cancelled" and cancelled["result"] is None
        assert not (server.data / "jobs" / running / "result.mp4").exists()
        assert server.api("DELETE", f"/api/jobs/{waiting}").status_code == 204
        assert server.api("GET", f"/api/jobs/{waiting}").status_code == 404
        assert server.api("DELETE", f"/api/jobs/{running}").status_code == 204
        assert not (server.data / "jobs" / running).exists()
        again = server.submit(clip)
        assert again.status_code == 201 and server.wait(again.json()["id"])["state"] == "done"


def test_the_time_limit_stops_a_job_and_results_expire(tmp_path, styles, clip):
    with_long = long_clip(tmp_path)
    with serving(tmp_path / "data", styles, "--job-timeout", "1", "--ttl", "4") as server:
        slow = server.submit(with_long).json()["id"]
        failed = server.wait(slow)
        assert failed["state"] == "failed" and "time limit of 1 s" in failed["error"]
        assert server.api("GET", f"/api/jobs/{slow}/result").status_code == 409
        deadline = time.monotonic() + 60
        while server.api("GET", f"/api/jobs/{slow}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.api("GET", f"/api/jobs/{slow}").status_code == 404
        while (server.data / "jobs" / slow).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not (server.data / "jobs" / slow).exists()  # the sweeper deleted its folder


def test_results_expire_after_the_ttl(tmp_path, styles):
    with serving(tmp_path / "data", styles, "--ttl", "5") as server:
        made = server.api("POST", "/api/jobs", files={"file": ("p.png", png_bytes())}, data={"style": "red"}).json()
        done = server.wait(made["id"])
        assert done["state"] == "done" and done["expires"] == pytest.approx(done["finished"] + 5)
        deadline = time.monotonic() + 60
        while (server.data / "jobs" / made["id"]).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.api("GET", f"/api/jobs/{made['id']}").status_code == 404
        assert not (server.data / "jobs" / made["id"]).exists()


def test_a_restart_keeps_finished_results(tmp_path, styles, clip):
    data = tmp_path / "data"
    with serving(data, styles) as server:
        job = server.submit(clip).json()["id"]
        assert server.wait(job)["state"] == "done"
        first = server.api("GET", f"/api/jobs/{job}/result").content
    with serving(data, styles) as server:
        assert server.api("GET", f"/api/jobs/{job}").json()["state"] == "done"
        assert server.api("GET", f"/api/jobs/{job}/result").content == first


def test_a_restart_reruns_waiting_jobs_and_fails_the_one_it_cut_off(tmp_path, styles, clip):
    data = tmp_path / "data"
    endless = make_clip(tmp_path / "endless.mp4", frames=1500, size=(64, 48), audio=False)
    with serving(data, styles, "--workers", "1", "--queue", "1") as server:
        running = server.submit(endless).json()["id"]
        waiting = server.submit(clip).json()["id"]
        server.wait(running, until=("running",))
        # SIGTERM: the running job is stopped, the waiting one stays queued on disk; uvicorn shuts down
        # gracefully, then lets the signal end the process as it would have (status -15), not a kill
        assert server.stop() == -15
    with serving(data, styles) as server:
        cut = server.api("GET", f"/api/jobs/{running}").json()
        assert cut["state"] == "failed" and "shut down while this job ran" in cut["error"]
        assert not (data / "jobs" / running / "result.mp4").exists()
        assert server.wait(waiting)["state"] == "done"


def test_the_token(tmp_path, styles, clip):
    with serving(tmp_path / "data", styles, token="s3cret-token-1") as server:
        anonymous = requests.get(server.url + "/api/styles", timeout=10)
        assert anonymous.status_code == 401 and "token" in anonymous.json()["error"]
        wrong = requests.get(server.url + "/api/styles", headers={"Authorization": "Bearer s3cret-token-2"}, timeout=10)
        assert wrong.status_code == 401
        assert server.api("GET", "/api/styles").status_code == 200
        assert requests.get(server.url + "/", timeout=10).status_code == 200  # the page itself shows the login
        browser = requests.Session()
        assert browser.post(server.url + "/api/login", json={"token": "nope"}, timeout=10).status_code == 401
        login = browser.post(server.url + "/api/login", json={"token": "s3cret-token-1"}, timeout=10)
        assert login.status_code == 200 and "s3cret" not in login.headers["set-cookie"]
        assert "HttpOnly" in login.headers["set-cookie"] and "SameSite=strict" in login.headers["set-cookie"]
        assert browser.get(server.url + "/api/styles", timeout=10).status_code == 200
        job = server.submit(clip)
        assert job.status_code == 201
        assert requests.get(server.url + f"/api/jobs/{job.json()['id']}", timeout=10).status_code == 401
        rebound = server.api("GET", "/api/styles", headers={"Host": "nstream.example:8000"})
        assert rebound.status_code == 200  # with a token any Host name may reach it


def test_any_address_but_loopback_needs_a_token(tmp_path, styles):
    result = subprocess.run([sys.executable, "-m", "nstream", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --host 0.0.0.0 opens the server to the network: give --token"), result.stderr


def test_the_light_install_serves_too(tmp_path, styles, clip):
    """Without PyTorch (tests/without_torch.py): the bundled lite style from its ONNX graph, a thumbnail,
    a job with its audio."""
    with serving(tmp_path / "data", styles, "-s", "starry_night", without_torch=True) as server:
        assert server.api("GET", "/api/styles/starry_night/thumbnail").status_code == 200
        job = server.submit(clip, style="starry_night").json()["id"]
        assert server.wait(job)["state"] == "done"
        (tmp_path / "out.mp4").write_bytes(server.api("GET", f"/api/jobs/{job}/result").content)
        assert server.stop(signal.SIGINT) in (0, 130)  # Ctrl-C ends it in Python: without_torch then checks sys.modules
        assert "without_torch: imported" not in server.output(), server.output()
    got = probe(tmp_path / "out.mp4")
    assert got["frames"] == 10 and got["audio_codec"] == "aac"


def test_cors_only_for_the_origins_named(tmp_path, styles, clip):
    with serving(tmp_path / "data", styles, "--cors-origin", "http://app.example") as server:
        preflight = server.api("OPTIONS", "/api/jobs", headers={"Origin": "http://app.example",
                                                               "Access-Control-Request-Method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        named = server.api("POST", "/api/jobs", files={"file": ("c.mp4", clip.read_bytes())}, data={"style": "seeded"},
                           headers={"Origin": "http://app.example"})
        assert named.status_code == 201 and named.headers["access-control-allow-origin"] == "http://app.example"
        other = server.api("POST", "/api/jobs", files={"file": ("c.mp4", clip.read_bytes())}, data={"style": "seeded"},
                           headers={"Origin": "http://evil.example"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_a_big_upload_streams_to_disk_not_into_memory(tmp_path, styles):
    """48 MB through a server that takes 64: its memory does not grow by the upload's size (it went to
    disk as it arrived), and the refused file is gone afterwards."""
    junk = tmp_path / "junk.mp4"
    with open(junk, "wb") as handle:
        for _ in range(48):
            handle.write(os.urandom(1024 * 1024))
    with serving(tmp_path / "data", styles, "--max-upload-mb", "64") as server:
        server.api("GET", "/api/styles")
        before = server.rss_mb()
        with open(junk, "rb") as handle:
            answer = server.api("POST", "/api/jobs", files={"file": ("junk.mp4", handle)}, data={"style": "seeded"})
        assert answer.status_code == 415 and "not a video or image" in answer.json()["error"]
        assert server.rss_mb() - before < 24, (before, server.rss_mb())
        assert not list((server.data / "jobs").iterdir())

"""Live in the browser, end to end: chromium's fake camera plays a clip, the page's Live view sends it to
the server over WebRTC, the same pipeline as stream.py stylizes it (network and temporal stages), and
the frames that come back are checked against the style: the seeded network's, then, after a click on
the style button, the all-red network's."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import moving_pattern
from serve_server import CHROMIUM, DRIVER, chromium, install_styles, serving, wait_for

pytest.importorskip("aiortc", reason="live needs aiortc (the serve extra)")
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")]

# The remote <video>'s current picture, averaged per channel (0..255), or null before one arrived.
MEAN_COLOUR = """
const video = document.getElementById("remote");
if (!video.videoWidth) return null;
const canvas = document.createElement("canvas");
canvas.width = video.videoWidth; canvas.height = video.videoHeight;
const context = canvas.getContext("2d");
context.drawImage(video, 0, 0);
const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
const sum = [0, 0, 0];
for (let i = 0; i < pixels.length; i += 4) { sum[0] += pixels[i]; sum[1] += pixels[i + 1]; sum[2] += pixels[i + 2]; }
const count = pixels.length / 4;
return [sum[0] / count, sum[1] / count, sum[2] / count, video.videoWidth, video.videoHeight];
"""


def y4m_clip(path: Path, frames: int = 30, size: tuple[int, int] = (160, 120), rate: int = 30) -> Path:
    """A Y4M file (what chromium's fake camera plays, looping) of the tests' moving pattern."""
    import av

    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(moving_pattern(index, *size), format="rgb24")
            out.mux(stream.encode(picture.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return path


def fake_camera(clip: Path) -> tuple[str, ...]:
    return ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}", "--autoplay-policy=no-user-gesture-required")


def is_red(colour) -> bool:
    return colour is not None and colour[0] > 200 and colour[1] < 50 and colour[2] < 50


@pytest.fixture(scope="module")
def styles(tmp_path_factory, style_model, red_style_model) -> Path:
    return install_styles(tmp_path_factory.mktemp("serve-styles"), style_model, red_style_model)


def test_the_webcam_over_webrtc_comes_back_stylized_and_switches_style(tmp_path, styles):
    from selenium.webdriver.common.by import By

    camera = y4m_clip(tmp_path / "camera.y4m")
    with serving(tmp_path / "data", styles) as server:
        driver = chromium(tmp_path / "profile", extra=fake_camera(camera))
        try:
            driver.get(server.url)
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#gallery .style")) == 2)
            driver.find_element(By.ID, "tab-live").click()
            driver.find_element(By.ID, "live-start").click()

            def running() -> dict | None:
                status = driver.execute_script("return window.nstreamLive.status || null")
                assert status is None or status["state"] != "failed", status
                return status if status and status["state"] == "running" and status["figures"]["frames_out"] > 5 else None

            status = wait_for(running, limit=180, every=0.5)
            assert status["styles"] == ["seeded", "red"] and status["figures"]["resolution"] == "160x120"
            seeded = wait_for(lambda: driver.execute_script(MEAN_COLOUR))
            assert seeded[3:] == [160, 120] and not is_red(seeded)  # the seeded network's picture, not red
            buttons = driver.find_elements(By.CSS_SELECTOR, "#live-styles button")
            assert [b.text for b in buttons] == ["seeded", "red"]
            buttons[1].click()
            red = wait_for(lambda: (lambda c: c if is_red(c) else None)(driver.execute_script(MEAN_COLOUR)), limit=60)
            assert red[0] > 200
            wait_for(lambda: driver.find_element(By.ID, "fig-style").text == "red")
            assert "active" in buttons[1].get_attribute("class") and "active" not in buttons[0].get_attribute("class")
            for figure in ("fig-fps", "fig-p50", "fig-p95", "fig-dropped"):
                assert driver.find_element(By.ID, figure).text not in ("", "-"), figure
            figures = driver.execute_script("return window.nstreamLive.status.figures")
            assert figures["latency_ms"]["p50"] > 0 and figures["frames_out"] > 5
            driver.find_element(By.ID, "live-stop").click()
            wait_for(lambda: driver.find_element(By.ID, "live-state").text == "off")
        finally:
            driver.quit()
        assert "Traceback" not in server.output(), server.output()


def test_the_live_api_from_a_python_webrtc_client(tmp_path, styles):
    """aiortc on the client side too: the offer/answer, the style switch by name, the bad requests, the
    one-call limit (429), the end of a call."""
    import asyncio

    import numpy as np
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

    class Pattern(VideoStreamTrack):
        async def recv(self):
            import av

            pts, time_base = await self.next_timestamp()
            frame = av.VideoFrame.from_ndarray(moving_pattern(pts // 3000, 160, 120), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    async def offer() -> tuple[RTCPeerConnection, asyncio.Queue]:
        pc, frames = RTCPeerConnection(RTCConfiguration(iceServers=[])), asyncio.Queue()

        @pc.on("track")
        def on_track(track) -> None:
            async def pump() -> None:
                while True:
                    frames.put_nowait((await track.recv()).to_ndarray(format="rgb24"))

            asyncio.ensure_future(pump())

        pc.addTransceiver(Pattern(), direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        return pc, frames

    async def newest(frames: asyncio.Queue, after: int = 0) -> np.ndarray:
        picture = await asyncio.wait_for(frames.get(), 60)
        for _ in range(after):
            picture = await asyncio.wait_for(frames.get(), 60)
        while not frames.empty():
            picture = frames.get_nowait()
        return picture

    async def scenario(server) -> str:
        post = lambda path, body: asyncio.to_thread(server.api, "POST", path, json=body)  # noqa: E731
        assert (await post("/api/live", {"type": "offer"})).status_code == 400
        assert "video track" in (await post("/api/live", {"sdp": "v=0\r\n", "type": "offer"})).json()["error"]
        pc, frames = await offer()
        made = await post("/api/live", {"sdp": pc.localDescription.sdp, "type": "offer"})
        assert made.status_code == 201 and made.json()["styles"] == ["seeded", "red"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=made.json()["sdp"], type=made.json()["type"]))
        call = made.json()["id"]
        seeded = await newest(frames, after=3)
        assert seeded.shape == (120, 160, 3) and not is_red([seeded[..., c].mean() for c in range(3)])
        other, _ = await offer()
        busy = await post("/api/live", {"sdp": other.localDescription.sdp, "type": "offer"})
        assert busy.status_code == 429 and "--max-live" in busy.json()["error"]
        await other.close()
        assert (await post(f"/api/live/{call}/style", {"index": 7})).status_code == 400
        assert (await post(f"/api/live/{call}/style", {"style": "nope"})).status_code == 400
        switched = await post(f"/api/live/{call}/style", {"style": "red"})
        assert switched.status_code == 200 and switched.json()["active"] == 1
        for _ in range(200):
            picture = await newest(frames)
            if is_red([picture[..., c].mean() for c in range(3)]):
                break
        assert is_red([picture[..., c].mean() for c in range(3)])
        assert (await asyncio.to_thread(server.api, "DELETE", f"/api/live/{call}")).status_code == 204
        await pc.close()
        return call

    with serving(tmp_path / "data", styles) as server:
        call = asyncio.run(scenario(server))
        wait_for(lambda: server.api("GET", f"/api/live/{call}").json()["state"] == "ended")
        assert "Traceback" not in server.output(), server.output()

"""Makes the README's pictures of the web app from a real server and Debian's chromium (headless).

    python docs/serve_screenshots.py

Writes docs/images/serve_files.png (the page after two jobs: a frame of the bundled demo clip through a
painting, two seconds of the clip through starry_night) and docs/images/serve_live.png (the Live view,
chromium's fake camera playing the demo clip at 640x360 through starry_night). A dozen of the installed
styles are offered (``-s``); their thumbnails are made on the way.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from serve_bench import DEMO, open_live_view, y4m_from_demo  # noqa: E402

from serve_server import Server, chromium, wait_for  # noqa: E402

IMAGES = ROOT / "docs" / "images"


def demo_parts(folder: Path) -> tuple[Path, Path]:
    """Two seconds of the demo clip at 480x270 with its sound, and its frame 40 as a PNG."""
    import av
    from PIL import Image

    clip = folder / "bunny.mp4"
    with av.open(str(DEMO)) as src, av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 480, 270, "yuv420p"
        audio = out.add_stream_from_template(src.streams.audio[0])
        index = 0
        for packet in src.demux():
            if packet.pts is None or float(packet.pts * packet.time_base) >= 2.0:
                continue
            if packet.stream.type == "audio":
                packet.stream = audio
                out.mux(packet)
                continue
            for frame in packet.decode():
                if index == 40:
                    Image.fromarray(frame.to_ndarray(format="rgb24")).resize((480, 270)).save(folder / "bunny.png")
                index += 1
                out.mux(video.encode(frame.reformat(width=480, height=270, format="yuv420p")))
        out.mux(video.encode(None))
    return clip, folder / "bunny.png"


def files_page(server: Server, folder: Path) -> None:
    from selenium.webdriver.common.by import By

    clip, still = demo_parts(folder)
    driver = chromium(folder / "profile-files", extra=("--window-size=1100,1560",))
    try:
        driver.get(server.url)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#gallery .style"))
        for upload, style in ((clip, "starry_night"), (still, "wave.jpg")):
            driver.find_element(By.CSS_SELECTOR, f'#gallery [data-style="{style}"]').click()
            driver.find_element(By.ID, "file").send_keys(str(upload))
            driver.find_element(By.ID, "start").click()
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#jobs li.job[data-state=done]") and
                     all(j.get_attribute("data-state") == "done" for j in driver.find_elements(By.CSS_SELECTOR, "#jobs li.job")),
                     limit=900, every=0.5)
        driver.execute_script("for (const v of document.querySelectorAll('.preview video')) v.currentTime = 1.2;")
        time.sleep(2)
        wait_for(lambda: driver.execute_script(
            "return [...document.images].every((i) => i.complete && i.naturalWidth > 0)"), limit=900, every=1)
        driver.save_screenshot(str(IMAGES / "serve_files.png"))
    finally:
        driver.quit()


def live_page(server: Server, folder: Path) -> None:
    camera = y4m_from_demo(folder / "camera.y4m", (640, 360), 120)
    driver = open_live_view(server, folder / "profile-live", camera, extra=("--window-size=1100,760",))
    try:
        time.sleep(8)
        driver.save_screenshot(str(IMAGES / "serve_live.png"))
    finally:
        driver.quit()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nstream-screens-") as tmp:
        folder = Path(tmp)
        styles = ["starry_night", "the_scream", "wave", "udnie", "woman_with_hat_lite", "starry_night.jpg", "wave.jpg",
                  "the_scream.jpg", "udnie.jpg", "woman_with_hat.jpg", "tf26-03", "tf26-12"]
        args = [arg for style in styles for arg in ("-s", style)]
        server = Server(folder / "data", folder, *args)
        try:
            files_page(server, folder)
            live_server_args = ("-s", "starry_night", "-s", "wave", "-s", "starry_night.jpg", "-s", "wave.jpg")
            live = Server(folder / "live-data", folder, *live_server_args)
            try:
                live_page(live, folder)
            finally:
                live.stop()
        finally:
            server.stop()
    print(f"wrote {IMAGES / 'serve_files.png'} and {IMAGES / 'serve_live.png'}")


if __name__ == "__main__":
    main()

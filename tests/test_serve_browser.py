"""The page in a real browser: Debian's chromium, headless, driven by Selenium through chromium-driver.
Upload a clip, watch the progress bar reach the end, download the result through the browser and check
its frames and audio; with a token the page asks for it; a bad upload's error shows on the page; a job is
cancelled and deleted from its buttons."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_clip, probe
from serve_server import CHROMIUM, DRIVER, chromium, install_styles, serving, wait_for

pytest.importorskip("selenium", reason="the browser tests drive chromium with selenium (test extra)")
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                 "(apt-get install chromium chromium-driver)")]


# A file dropped on the page's drop zone, as a drag from the desktop delivers it.
DROP = """
const [text, name] = arguments;
const data = new DataTransfer();
data.items.add(new File([text], name, { type: "video/mp4" }));
const zone = document.getElementById("drop");
zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
"""


def downloaded(folder: Path, suffix: str) -> Path | None:
    """The finished download: chromium reserves the final name with an empty file at the start and writes
    into a ``.crdownload`` beside it until the end."""
    files = list(folder.iterdir())
    done = [p for p in files if p.suffix == suffix and p.stat().st_size > 0]
    return done[0] if done and not any(p.suffix == ".crdownload" for p in files) else None


@pytest.fixture(scope="module")
def styles(tmp_path_factory, style_model, red_style_model) -> Path:
    return install_styles(tmp_path_factory.mktemp("serve-styles"), style_model, red_style_model)


def test_upload_progress_download_in_the_browser(tmp_path, styles):
    from selenium.webdriver.common.by import By

    clip = make_clip(tmp_path / "holiday.mp4", frames=10, size=(64, 48), audio=True)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serving(tmp_path / "data", styles) as server:
        driver = chromium(tmp_path / "profile", downloads)
        try:
            driver.get(server.url)
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#gallery .style")) == 2)
            driver.find_element(By.CSS_SELECTOR, '#gallery [data-style="red"]').click()
            driver.find_element(By.ID, "file").send_keys(str(clip))
            driver.find_element(By.ID, "start").click()
            item = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#jobs li.job"))[0]
            seen = []

            def finished() -> bool:  # the state first: the page sets both at once, so a "done" read before
                # the bar guarantees the bar's 1 (the other way round a fast job could finish between the reads)
                state = item.get_attribute("data-state")
                seen.append(float(item.find_element(By.TAG_NAME, "progress").get_attribute("value")))
                return state in ("done", "failed", "cancelled")

            wait_for(finished, every=0.05)
            assert item.get_attribute("data-state") == "done", item.text
            assert seen[-1] == 1.0 and seen == sorted(seen)
            assert "10 / 10 frames" in item.find_element(By.CLASS_NAME, "meta").text
            wait_for(lambda: item.find_elements(By.CSS_SELECTOR, ".preview video"))
            driver.save_screenshot(str(tmp_path / "page.png"))
            item.find_element(By.CLASS_NAME, "download").click()
            result = wait_for(lambda: downloaded(downloads, ".mp4"))
            assert result.name == "holiday_red.mp4"
        finally:
            driver.quit()
    got, sent = probe(result), probe(clip)
    assert got["frames"] == sent["frames"] == 10 and (got["width"], got["height"]) == (64, 48)
    assert got["audio_codec"] == "aac" and got["audio_seconds"] == pytest.approx(sent["audio_seconds"], abs=0.03)
    from nstream.temporal.evaluate import read_frames

    for frame in read_frames(str(result), 10):  # the red network: every pixel red, through the codec
        assert frame[..., 0].mean() > 230 and frame[..., 1:].mean() < 30
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_login_a_bad_upload_and_cancel_and_delete_on_the_page(tmp_path, styles):
    from selenium.webdriver.common.by import By

    with serving(tmp_path / "data", styles, token="browser-token-1") as server:
        driver = chromium(tmp_path / "profile")
        try:
            driver.get(server.url)
            wait_for(lambda: driver.find_element(By.ID, "login").is_displayed())
            driver.find_element(By.ID, "token").send_keys("wrong-token")
            driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
            wait_for(lambda: "wrong token" in driver.find_element(By.ID, "login-error").text)
            driver.find_element(By.ID, "token").clear()
            driver.find_element(By.ID, "token").send_keys("browser-token-1")
            driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#gallery .style")) == 2)
            assert not driver.find_element(By.ID, "login").is_displayed()
            driver.execute_script(DROP, "not a video at all\n" * 50, "notes.mp4")  # dragged onto the drop zone
            wait_for(lambda: "notes.mp4" in driver.find_element(By.ID, "chosen").text)
            driver.find_element(By.ID, "start").click()
            message = wait_for(lambda: driver.find_element(By.ID, "error").text)
            assert "not a video or image" in message
            assert not driver.find_elements(By.CSS_SELECTOR, "#jobs li.job")
            long = make_clip(tmp_path / "long.mp4", frames=1500, size=(64, 48), audio=False)
            driver.find_element(By.ID, "file").send_keys(str(long))
            driver.find_element(By.ID, "start").click()
            item = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#jobs li.job[data-state=running]"))[0]
            job = item.get_attribute("data-job")
            item.find_element(By.CLASS_NAME, "cancel").click()
            wait_for(lambda: item.get_attribute("data-state") == "cancelled")
            assert not item.find_element(By.CLASS_NAME, "cancel").is_displayed()
            item.find_element(By.CLASS_NAME, "delete").click()
            wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, "#jobs li.job"))
            assert server.api("GET", f"/api/jobs/{job}").status_code == 404
        finally:
            driver.quit()


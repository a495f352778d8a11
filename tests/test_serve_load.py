"""Load: rounds of concurrent uploads to a real server whose pool takes fewer than are sent. Every upload
is either accepted and finishes with a correct result, or refused with 429 and its message; the
server's memory does not grow from round to round (bench/serve_bench.py load measures it at scale)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import make_clip
from serve_server import install_styles, serving

pytestmark = pytest.mark.slow

CLIENTS, WORKERS, QUEUE, ROUNDS = 5, 1, 1, 4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Results of one clip and style are the same picture; not always bit-exact while the CPU is contended
    (docs/BENCHMARKS.md, "Web app")."""
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * float(np.log10(255.0**2 / error))


def upload_together(server, clip: Path, clients: int) -> list:
    """``clients`` uploads released at the same moment; their responses."""
    gate = threading.Barrier(clients)

    def one(_: int):
        gate.wait()
        return server.submit(clip)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def test_concurrent_uploads_finish_or_get_429_and_memory_stays_flat(tmp_path, style_model, red_style_model):
    from nstream.temporal.evaluate import read_frames

    styles = install_styles(tmp_path / "styles", style_model, red_style_model)
    clip = make_clip(tmp_path / "clip.mp4", frames=10, size=(64, 48), audio=True)
    reference, memory = None, []
    with serving(tmp_path / "data", styles, "--workers", str(WORKERS), "--queue", str(QUEUE)) as server:
        for _ in range(ROUNDS):
            answers = upload_together(server, clip, CLIENTS)
            accepted = [a.json()["id"] for a in answers if a.status_code == 201]
            refused = [a for a in answers if a.status_code != 201]
            assert 1 <= len(accepted) <= WORKERS + QUEUE and len(accepted) + len(refused) == CLIENTS
            assert all(a.status_code == 429 and "busy" in a.json()["error"] for a in refused)
            for job in accepted:
                assert server.wait(job)["state"] == "done"
                (tmp_path / "out.mp4").write_bytes(server.api("GET", f"/api/jobs/{job}/result").content)
                frames = np.stack(read_frames(str(tmp_path / "out.mp4"), 100))
                reference = frames if reference is None else reference
                assert frames.shape == (10, 48, 64, 3) and psnr(frames, reference) > 30
                assert server.api("DELETE", f"/api/jobs/{job}").status_code == 204
            memory.append(server.rss_mb())
    # the first round loads the libraries and warms the allocator; later rounds must not add to it
    assert max(memory[1:]) - memory[1] < 80, memory

"""Web app benchmarks for docs/BENCHMARKS.md ("Web app"): load, jobs per minute, live WebRTC.

    python bench/serve_bench.py load [--rounds 5] [--clients 8] [--workers 1] [--queue 2] [--clip CLIP]
    python bench/serve_bench.py throughput [--jobs 4] [--clip CLIP] [--style starry_night]
    python bench/serve_bench.py live [--seconds 20] [--size 640x360] [--style starry_night]

``load``: rounds of ``--clients`` uploads released at once against a pool of ``--workers`` plus
``--queue``: how many were accepted and refused (429), whether every accepted result is correct (all
its frames, the same picture as the first result: PSNR >= 35 dB against it; the lowest is reported), and
the server's resident memory after each round.
``throughput``: jobs per minute for one short clip through the server (``--jobs`` uploaded at once, one
worker) against ``stream.py`` run as many times in a row on the same clip, and the Python API in one
process (the same session code without HTTP, the queue or the per-run process start).
``live``: Debian's chromium (headless, its fake camera playing the demo clip at ``--size``) in the
page's Live view against the server on loopback: the server's fps, the pipeline's latency (from the
frame arriving decoded from WebRTC to its hand-over to the outgoing track) p50/p95, drops, and the
frame rate the browser receives (its own getStats).
Each prints one JSON object. Servers run as subprocesses on 127.0.0.1, with data in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from serve_server import Server, chromium, wait_for  # noqa: E402

CARPHONE = ROOT.parent / "shared" / "data" / "video" / "carphone.mp4"
DEMO = ROOT / "nstream" / "assets" / "bigbuckbunny.mp4"


SAME_PSNR = 35.0  # dB against the first result: the same picture (not bit-exact under load: see BENCHMARKS)


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0 ** 2 / error)


def frames_of(path: Path) -> list:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _burst(server: Server, clip: Path, clients: int) -> list:
    gate = threading.Barrier(clients)

    def one(_: int):
        gate.wait()
        return server.submit(clip, style=server.style)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def run_load(args: argparse.Namespace, folder: Path) -> dict:
    import numpy as np

    server = Server(folder / "data", folder, "--workers", str(args.workers), "--queue", str(args.queue), "-s", args.style)
    server.style = args.style
    rounds, reference, worst = [], None, float("inf")
    try:
        for _ in range(args.rounds):
            answers = _burst(server, args.clip, args.clients)
            accepted = [a.json()["id"] for a in answers if a.status_code == 201]
            refused = [a.status_code for a in answers if a.status_code != 201]
            correct = 0
            for job in accepted:
                state = server.wait(job, limit=1800)
                (folder / "out.mp4").write_bytes(server.api("GET", f"/api/jobs/{job}/result").content)
                frames = np.stack(frames_of(folder / "out.mp4"))
                reference = frames if reference is None else reference
                same = frames.shape == reference.shape and psnr(frames, reference) >= SAME_PSNR
                correct += int(state["state"] == "done" and bool(same))
                worst = min(worst, psnr(frames, reference)) if frames.shape == reference.shape else 0.0
                server.api("DELETE", f"/api/jobs/{job}")
            rounds.append({"accepted": len(accepted), "refused_429": refused.count(429),
                           "other": len(refused) - refused.count(429), "correct": correct, "rss_mb": round(server.rss_mb(), 1)})
    finally:
        server.stop()
    return {"bench": "load", "clip": str(args.clip), "style": args.style, "clients": args.clients,
            "workers": args.workers, "queue": args.queue, "rounds": rounds, "lowest_psnr_db_vs_first": round(worst, 1)}


def run_throughput(args: argparse.Namespace, folder: Path) -> dict:
    import nstream

    server = Server(folder / "data", folder, "--workers", "1", "--queue", str(args.jobs), "-s", args.style)
    try:
        started = time.monotonic()
        ids = [server.submit(args.clip, style=args.style).json()["id"] for _ in range(args.jobs)]
        states = [server.wait(job, limit=3600) for job in ids]
        served = time.monotonic() - started
    finally:
        server.stop()
    assert all(state["state"] == "done" for state in states), states
    started = time.monotonic()
    for index in range(args.jobs):
        subprocess.run([sys.executable, str(ROOT / "stream.py"), "-i", str(args.clip), "-s", args.style, "-o",
                        str(folder / f"cli{index}.mp4"), "--no-dashboard"], check=True, capture_output=True)
    cli = time.monotonic() - started
    started = time.monotonic()
    for index in range(args.jobs):
        nstream.stylize_video(str(args.clip), str(folder / f"api{index}.mp4"), style=args.style)
    api = time.monotonic() - started
    per_minute = {name: round(60 * args.jobs / seconds, 2) for name, seconds in
                  (("server", served), ("stream_py", cli), ("python_api", api))}
    return {"bench": "throughput", "clip": str(args.clip), "style": args.style, "jobs": args.jobs,
            "jobs_per_minute": per_minute, "seconds": {"server": round(served, 1), "stream_py": round(cli, 1),
                                                        "python_api": round(api, 1)}}


def y4m_from_demo(path: Path, size: tuple[int, int], frames: int) -> Path:
    """The demo clip's first frames at ``size`` as Y4M, for chromium's fake camera (it loops the file)."""
    import av

    with av.open(str(DEMO)) as src, av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index, frame in enumerate(src.decode(video=0)):
            if index >= frames:
                break
            out.mux(stream.encode(frame.reformat(width=size[0], height=size[1], format="yuv420p")))
        out.mux(stream.encode(None))
    return path


def open_live_view(server: Server, profile: Path, camera: Path, extra: tuple[str, ...] = ()) -> Any:
    """Chromium with ``camera`` (Y4M) as its webcam, on the page's Live view, started and running."""
    from selenium.webdriver.common.by import By

    fake = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}", *extra)
    driver = chromium(profile, extra=fake)
    try:
        driver.get(server.url)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#gallery .style"))
        driver.find_element(By.ID, "tab-live").click()
        driver.find_element(By.ID, "live-start").click()
        wait_for(lambda: (driver.execute_script("return window.nstreamLive.status || null") or {}).get("state") == "running",
                 limit=300)
    except BaseException:
        driver.quit()
        raise
    return driver


def run_live(args: argparse.Namespace, folder: Path) -> dict:
    width, height = (int(v) for v in args.size.split("x"))
    server = Server(folder / "data", folder, "-s", args.style)
    driver = open_live_view(server, folder / "profile", y4m_from_demo(folder / "camera.y4m", (width, height), 120))
    try:
        time.sleep(args.warmup)
        samples = []
        for _ in range(args.seconds):
            time.sleep(1)
            samples.append(driver.execute_script("return [window.nstreamLive.status, window.nstreamLive.received]"))
        figures = samples[-1][0]["figures"]
    finally:
        driver.quit()
        server.stop()
    fps = [s[0]["figures"]["fps"] for s in samples]
    received = [s[1] for s in samples if s[1] is not None]
    return {"bench": "live", "size": args.size, "style": args.style, "seconds": args.seconds,
            "server_fps_mean": round(sum(fps) / len(fps), 2), "browser_received_fps_mean":
            round(sum(received) / len(received), 2) if received else None,
            "pipeline_latency_ms": figures["latency_ms"], "frames_in": figures["frames_in"],
            "frames_out": figures["frames_out"], "dropped": figures["dropped_by_reason"], "engine": figures["engine"],
            "resolution": figures["resolution"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    clip = CARPHONE if CARPHONE.is_file() else DEMO
    for name in ("load", "throughput", "live"):
        sub = commands.add_parser(name)
        sub.add_argument("--style", default="starry_night")
        sub.add_argument("--clip", type=Path, default=clip)
    commands.choices["load"].add_argument("--rounds", type=int, default=5)
    commands.choices["load"].add_argument("--clients", type=int, default=8)
    commands.choices["load"].add_argument("--workers", type=int, default=1)
    commands.choices["load"].add_argument("--queue", type=int, default=2)
    commands.choices["throughput"].add_argument("--jobs", type=int, default=4)
    commands.choices["live"].add_argument("--seconds", type=int, default=20)
    commands.choices["live"].add_argument("--warmup", type=float, default=5.0)
    commands.choices["live"].add_argument("--size", default="640x360")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nstream-serve-bench-") as tmp:
        run = {"load": run_load, "throughput": run_throughput, "live": run_live}[args.command]
        print(json.dumps(run(args, Path(tmp)), indent=1))


if __name__ == "__main__":
    main()

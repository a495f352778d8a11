"""Offline stills by loss network and start image: style closeness, content kept, time, convergence.

For each (photo, painting) pair, each ``--nets`` loss network and each ``--inits`` start image,
one still is optimized (L-BFGS, no early stopping, so the whole loss history is seen) and measured:

- ``fid``: the style-embedding distance ratio (nstream/models/fidelity.py): |e(out) - e(painting)| /
  |e(photo) - e(painting)| through Magenta's style predictor, lower is closer to the painting. The
  ``magenta`` loss network is that predictor's MobileNetV2, so this judge favours it: see ``gram``.
- ``gram``: the style loss through the seeded random VGG19 (relative Gram error, mean over
  relu1_1..relu5_1, the painting at the same size), a judge that ``magenta`` never optimized.
- ``edges``: content kept, SSIM between the Sobel edge maps of output and photo (1: the same edges).
- ``s/it``: seconds per iteration; ``conv``: iterations until the loss is within 5 % of its total
  fall (L_k - L_end <= 0.05 (L_0 - L_end)).

    nice -n 5 python bench/loss_net_compare.py --size 256 --iters 150 --out /tmp/lossnet

Options exist to try MobileNetV2 layers, smoothing and weights (``--magenta-*``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
PAIRS = ("tubingen:starry_night", "golden_gate:wave", "hoovertowernight:the_scream", "venice-boat:udnie",
         "chicago:woman-with-hat-matisse")


def read(path: Path, size: int | None = None) -> np.ndarray:
    from nstream.media.sources import read_image
    from nstream.optimize.transfer import fit_size, resize

    image = read_image(str(path), "image")
    if size:
        image = resize(image, *fit_size(image.shape[1], image.shape[0], size))
    return image


def edge_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Gaussian window, sigma 1.5) of the Sobel gradient magnitudes of two RGB images."""
    def edges(image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))

    x, y = edges(a), edges(b)
    blur = lambda z: cv2.GaussianBlur(z, (0, 0), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim.mean())


class GramJudge:
    """Relative Gram style loss through the seeded random VGG19 (the offline default layers)."""

    def __init__(self) -> None:
        from nstream.lossnet import build_encoder
        from nstream.optimize.losses import DEFAULT_STYLE_LAYERS

        self.layers = list(DEFAULT_STYLE_LAYERS)
        self.encoder = build_encoder("random", self.layers, seed=0)

    def __call__(self, output: np.ndarray, painting: np.ndarray) -> float:
        import torch

        from nstream.losses import gram_matrix, style_energy, style_loss
        from nstream.optimize.transfer import resize, to_tensor

        side = max(output.shape[:2])
        scale = side / max(painting.shape[:2])
        painting = resize(painting, round(painting.shape[1] * scale), round(painting.shape[0] * scale))
        with torch.no_grad():
            out, ref = self.encoder(to_tensor(output, "cpu")), self.encoder(to_tensor(painting, "cpu"))
            losses = [style_loss(gram_matrix(out[k]), gram_matrix(ref[k]), style_energy(gram_matrix(ref[k])))
                      for k in self.layers]
        return float(sum(losses) / len(losses))


def converged_at(history: list[float], share: float = 0.05) -> int:
    if not history:
        return 0
    start, end = history[0], min(history)
    return next(i + 1 for i, value in enumerate(history) if value - end <= share * (start - end))


def run_one(args: argparse.Namespace, photo: str, painting: str, net: str, init: str, judge: GramJudge) -> dict:
    import torch

    from nstream.models.fidelity import fidelity
    from nstream.optimize.config import OfflineConfig
    from nstream.optimize.render import build_transfer

    content_path, style_path = DATA / "content" / f"{photo}.jpg", DATA / "styles" / f"{painting}.jpg"
    content, style = read(content_path, args.size), read(style_path)
    magenta = net == "magenta"
    config = OfflineConfig(content=str(content_path), styles=[str(style_path)], loss_net=net, init=init,
                           iters=(args.iters, args.iters), early_stopping=0.0, threads=args.threads,
                           style_weight=args.magenta_style_weight if magenta else args.style_weight,
                           content_layers=args.magenta_content if magenta else None,
                           style_layers=args.magenta_style if magenta else None)
    transfer = build_transfer(config, [style], torch.device("cpu"))
    start = transfer.start_image(content, init)
    started = time.perf_counter()
    image, run = transfer.stylize(content, start, args.iters)
    seconds = time.perf_counter() - started
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(Path(args.out) / f"{photo}_{painting}_{net}_{init}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if init == "stylized":  # the arbitrary network's own picture, the start
            cv2.imwrite(str(Path(args.out) / f"{photo}_{painting}_arbitrary.png"),
                        cv2.cvtColor((start * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    return {"photo": photo, "painting": painting, "net": net, "init": init, "iters": run.iterations, "stopped": run.stopped,
            "style_weight": config.weights().style,
            "fid": round(fidelity(image, content, style), 3), "gram": round(judge(image, style), 4),
            "edges": round(edge_ssim(image, content), 3), "s_per_it": round(seconds / max(1, run.iterations), 3),
            "conv": converged_at(run.history), "start_fid": round(fidelity((start * 255).round().astype(np.uint8),
                                                                            content, style), 3)}


def grid(rows: list[list], labels: list[str], target: Path, tile: int = 200) -> Path:
    """PIL images in a labelled grid, each fitted into ``tile`` x ``tile``, rows as tall as their tallest."""
    from PIL import Image, ImageDraw

    label, gap = 22, 4
    heights = [max(image.height for image in row) for row in rows]
    canvas = Image.new("RGB", ((tile + gap) * len(labels) - gap, label + sum(heights) + gap * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, text in enumerate(labels):
        draw.text((c * (tile + gap) + 4, 6), text, fill="black")
    top = label
    for row, height in zip(rows, heights, strict=True):
        for c, image in enumerate(row):
            canvas.paste(image, (c * (tile + gap), top))
        top += height + gap
    canvas.save(target, quality=90)
    return target


def sheet(folder: Path, pairs: list[str], columns: list[tuple[str, str]], target: Path, tile: int = 200) -> Path:
    """One row per pair (the photo and the painting first), one column per ``(file suffix, label)``."""
    from PIL import Image

    rows = []
    for pair in pairs:
        photo, painting = pair.split(":")
        files = [DATA / "content" / f"{photo}.jpg", DATA / "styles" / f"{painting}.jpg",
                 *[folder / f"{photo}_{painting}_{suffix}.png" for suffix, _ in columns]]
        images = [Image.open(path).convert("RGB") for path in files]
        for image in images:
            image.thumbnail((tile, tile))
        images[1].thumbnail((tile, images[0].height))  # the painting no taller than the photo
        rows.append(images)
    return grid(rows, ["photo", "painting", *[name for _, name in columns]], target, tile)


def table(paths: list[str]) -> str:
    """A Markdown table of JSON lines from ``--json``: per loss network and start, the means over pairs."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            rows.setdefault((row["net"], row["init"]), []).append(row)
    out = ["| loss network | start | pairs | fid (start) | fid | gram (random VGG19) | edges | s/it | conv |",
           "|---|---|---|---|---|---|---|---|---|"]
    for (net, init), group in rows.items():
        mean = {k: float(np.mean([r[k] for r in group])) for k in ("start_fid", "fid", "gram", "edges", "s_per_it", "conv")}
        out.append(f"| {net} | {init} | {len(group)} | {mean['start_fid']:.2f} | **{mean['fid']:.2f}** | {mean['gram']:.4f} | "
                   f"{mean['edges']:.2f} | {mean['s_per_it']:.2f} | {mean['conv']:.0f} |")
    return "\n".join(out)


def timing(args: argparse.Namespace, rounds: tuple[int, int] = (5, 25)) -> str:
    """Seconds per iteration of each loss network on Tübingen / Starry Night, interleaved in one process:
    each runs ``rounds[0]`` and ``rounds[1]`` iterations and the difference is timed, so set-up cancels."""
    import torch

    from nstream.optimize.config import OfflineConfig
    from nstream.optimize.render import build_transfer

    content, style = read(DATA / "content" / "tubingen.jpg", args.size), read(DATA / "styles" / "starry_night.jpg")
    transfers = {net: build_transfer(OfflineConfig(content="", styles=[""], loss_net=net, threads=args.threads,
                                                   early_stopping=0.0), [style], torch.device("cpu"))
                 for net in args.nets.split(",")}
    seconds: dict[str, list[float]] = {net: [] for net in transfers}
    for iterations in rounds:
        for net, transfer in transfers.items():
            started = time.perf_counter()
            transfer.stylize(content, transfer.start_image(content, "content"), iterations)
            seconds[net].append(time.perf_counter() - started)
    return ", ".join(f"{net} {(s[1] - s[0]) / (rounds[1] - rounds[0]):.3f} s/it" for net, s in seconds.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default=",".join(PAIRS), help="photo:painting,... (file stems in ../shared/data)")
    p.add_argument("--nets", default="random,magenta")
    p.add_argument("--inits", default="content,random,stylized")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--style-weight", type=float, default=10.0, help="for the VGG nets")
    p.add_argument("--magenta-style-weight", type=float, default=None, help="default: offline.py's default for magenta")
    p.add_argument("--magenta-content", type=lambda t: t.split(","), default=None)
    p.add_argument("--magenta-style", type=lambda t: t.split(","), default=None)
    p.add_argument("--magenta-smoothing", default=None, help="layer, positions or none")
    p.add_argument("--out", help="folder for the pictures")
    p.add_argument("--json", help="append one JSON line per run to this file")
    p.add_argument("--time", action="store_true", help="only time an iteration of each --nets, interleaved")
    p.add_argument("--table", nargs="+", help="print a Markdown table of these --json files and stop")
    p.add_argument("--sheet", help="write a side-by-side JPEG of the pictures in --out (one row per pair) and stop")
    args = p.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.time:
        print(f"{args.size} px, {args.threads} thread(s): {timing(args)}")
        return
    if args.sheet:
        columns = [(f"{net}_{init}", f"{net} VGG19, {init} start" if net == "random" else f"{net}, {init} start")
                   for net in args.nets.split(",") for init in args.inits.split(",")]
        print(sheet(Path(args.out), args.pairs.split(","), columns, Path(args.sheet)))
        return
    if args.magenta_smoothing:
        import nstream.lossnet

        nstream.lossnet.MAGENTA_SMOOTHING = None if args.magenta_smoothing == "none" else args.magenta_smoothing
    judge = GramJudge()
    for pair in args.pairs.split(","):
        photo, painting = pair.split(":")
        for net in args.nets.split(","):
            for init in args.inits.split(","):
                row = run_one(args, photo, painting, net, init, judge)
                row["variant"] = {"smoothing": args.magenta_smoothing, "content": args.magenta_content,
                                  "style": args.magenta_style}
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

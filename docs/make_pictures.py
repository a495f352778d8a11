"""Makes the README's pictures from real runs: a still, a strip of video frames, the dashboard.

    python docs/make_pictures.py [--style starry_night] [--content PATH_TO_PHOTO]

Writes docs/images/<content>_<style>.png (photo | stylized), docs/images/bigbuckbunny_strip.png
(demo clip frames above, stylized below) and docs/images/dashboard.svg (the dashboard as it
looked at the end of a real run on the demo clip). ``--only gallery`` writes
docs/images/gallery_<content>.jpg: the photo through every bundled style, johnson and lite;
``--only flicker`` docs/images/flicker_bikes.jpg: ``nstream eval``'s frames and flicker images,
per frame against blended; ``--only switch`` docs/images/style_switch.jpg: the demo clip around a
``--style-every`` switch, the old style fading out; ``--only tf26`` docs/images/tf26_sheet.jpg: the
photo through each of the 26 styles of the multi-style network, labelled with the name ``-s`` takes;
``--only morph`` docs/images/morph.jpg: the demo clip while ``--style-every`` morphs one painting's
style vector into another's; ``--only fine --plain PATH`` docs/images/starry_fine.jpg: a photo through
the arbitrary network, a plain lite (PATH: the one the detail layer replaced, ``git show
f1737e7~1:nstream/styles/starry_night_lite.pth``) and starry_night_lite, and a corner of each magnified.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from nstream.cli import DEMO_CLIP, run_stream, stream_parser  # noqa: E402
from nstream.media.sources import FileSource  # noqa: E402
from nstream.models.registry import DEFAULT_STYLE  # noqa: E402

IMAGES = ROOT / "docs" / "images"


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 6) -> Image.Image:
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + gap + right.shape[1], 3), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + gap:] = right
    return Image.fromarray(canvas)


def load_photo(path: Path, width: int) -> Image.Image:
    photo = Image.open(path).convert("RGB")
    return photo.resize((width, round(photo.height * width / photo.width)), Image.LANCZOS)


def stylize_still(style: str, photo: Image.Image) -> np.ndarray:
    """One picture through ``stream.py`` itself (image source, image sink)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        photo.save(src)
        run_stream(stream_parser().parse_args(["-i", str(src), "-o", str(dst), "-s", style, "--no-dashboard"]))
        return np.asarray(Image.open(dst).convert("RGB"))


def still(style: str, content: Path, width: int) -> Path:
    photo = load_photo(content, width)
    out = IMAGES / f"{content.stem}_{style}.jpg"
    side_by_side(np.asarray(photo), stylize_still(style, photo)).save(out, quality=85)
    return out


def gallery(styles: list[str], content: Path, width: int, gap: int = 6) -> Path:
    """One photo through every bundled style: a column per painting (painting, johnson, lite)."""
    photo = load_photo(content, width)
    cell = (width, photo.height)
    columns = [[np.asarray(photo), np.full((cell[1], width, 3), 255, np.uint8), np.full((cell[1], width, 3), 255, np.uint8)]]
    labels = [["photo", "", ""]]
    for style in styles:
        painting = Image.open(ROOT / "nstream" / "paintings" / f"{style}.jpg").convert("RGB")  # the bundled copy
        painting = ImageOps.fit(painting, cell, Image.LANCZOS)
        columns.append([np.asarray(painting), stylize_still(f"{style}_johnson", photo),
                        stylize_still(f"{style}_lite", photo)])
        labels.append([style, "johnson", "lite"])
    out = IMAGES / f"gallery_{content.stem}.jpg"
    labelled_grid(columns, labels, cell, gap).save(out, quality=85)
    return out


def labelled_grid(columns: list[list[np.ndarray]], labels: list[list[str]], cell: tuple[int, int], gap: int = 6) -> Image.Image:
    """Pictures in columns, each cropped to ``cell`` (width, height), a label in its top-left corner."""
    from PIL import ImageDraw

    width, height = cell
    canvas = Image.new("RGB", (len(columns) * (width + gap) - gap, len(columns[0]) * (height + gap) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (column, names) in enumerate(zip(columns, labels, strict=True)):
        for r, (image, name) in enumerate(zip(column, names, strict=True)):
            x, y = c * (width + gap), r * (height + gap)
            canvas.paste(Image.fromarray(image[:height, :width]), (x, y))
            if name:
                draw.rectangle((x, y, x + 7 * len(name) + 6, y + 14), fill="black")
                draw.text((x + 3, y + 2), name, fill="white")
    return canvas


def fine(content: Path, plain: Path, width: int = 384, zoom: int = 3) -> Path:
    """The photo through the teacher, a plain lite student and the bundled lite (with its detail layer),
    and below each a corner of it magnified ``zoom`` times (nearest neighbour: the brush texture as it is)."""
    photo = load_photo(content, width)
    specs = {"teacher (arbitrary network)": "starry_night.jpg", "plain lite": str(plain),
             "starry_night_lite (detail layer)": "starry_night_lite"}
    side = width // zoom
    columns = [[np.asarray(photo), np.asarray(photo)[:side, :side].repeat(zoom, 0).repeat(zoom, 1)]]
    labels = [["photo", f"top left, {zoom}x"]]
    for label, spec in specs.items():
        styled = stylize_still(spec, photo)
        columns.append([styled, styled[:side, :side].repeat(zoom, 0).repeat(zoom, 1)])
        labels.append([label, ""])
    out = IMAGES / "starry_fine.jpg"
    labelled_grid(columns, labels, (width, min(photo.height, width))).save(out, quality=90)
    return out


def strip(style: str, frames: int, step: int, width: int) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        styled_path = Path(tmp) / "styled.mkv"
        run_stream(stream_parser().parse_args(["-i", str(DEMO_CLIP), "-o", str(styled_path), "-s", style, "--no-audio",
                                               "--max-frames", str(frames * step), "--no-dashboard", "--crf", "12"]))
        rows = []
        for path in (DEMO_CLIP, styled_path):
            source = FileSource(str(path))
            picked = [f.image for f in source.frames() if f.index % step == 0][:frames]
            source.close()
            scaled = [np.asarray(Image.fromarray(p).resize((width, round(p.shape[0] * width / p.shape[1])))) for p in picked]
            rows.append(np.concatenate(scaled, axis=1))
    out = IMAGES / "bigbuckbunny_strip.jpg"
    Image.fromarray(np.concatenate(rows, axis=0)).save(out, quality=85)
    return out


def flicker(style: str, video: Path, frames: int, columns: int = 3, width: int = 320) -> Path:
    """``nstream eval``'s own pictures, cut to a few columns and labelled: what blending removes."""
    from PIL import ImageDraw

    from nstream.temporal.evaluate import build_parser, run

    with tempfile.TemporaryDirectory() as tmp:
        args = build_parser(argparse.ArgumentParser()).parse_args(
            [str(video), "--style", style, "--max-frames", str(frames), "--json", "--out", tmp])
        with open("/dev/null", "w") as quiet:  # the JSON report is not wanted here
            stdout, sys.stdout = sys.stdout, quiet
            try:
                report = run(args)
            finally:
                sys.stdout = stdout
        strip_rows, diff_rows = (np.asarray(Image.open(Path(tmp) / name).convert("RGB")) for name in ("strip.png", "diff.png"))
    height, tile = strip_rows.shape[0] // 3, strip_rows.shape[1] // 5
    rows = [strip_rows[i * height:(i + 1) * height, : tile * columns] for i in range(3)]
    rows += [np.clip(diff_rows[i * height:(i + 1) * height, : tile * columns].astype(np.uint16) * 2, 0, 255).astype(np.uint8)
             for i in range(2)]  # eval's x4, doubled: |O_t - warp(O_t+1)| x8
    scale = width / tile
    labels = ["input", "per frame", f"blended (a={args.temporal_strength:g})", "|O_t - warp(O_t+1)| x8, per frame", "same, blended"]
    pictures = []
    for row, label in zip(rows, labels, strict=True):
        picture = Image.fromarray(row).resize((round(row.shape[1] * scale), round(row.shape[0] * scale)), Image.LANCZOS)
        draw = ImageDraw.Draw(picture)
        draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
        draw.text((4, 2), label, fill=(255, 255, 255))
        pictures.append(np.asarray(picture))
    out = IMAGES / f"flicker_{video.stem}.jpg"
    Image.fromarray(np.concatenate(pictures, axis=0)).save(out, quality=88)
    off, on = (report["settings"][key]["e_warp"] for key in report["settings"])
    print(f"E_warp per frame {off:.3e}, blended {on:.3e} ({on / off - 1:+.0%})")
    return out


def switch_strip(styles: list[str], every: float, picks: list[int], width: int = 256,
                 name: str = "style_switch.jpg") -> Path:
    """Frames of the demo clip around a ``--style-every`` switch, blended: the old style fading out
    (or, between two paintings, morphing into the new one)."""
    from PIL import ImageDraw

    with tempfile.TemporaryDirectory() as tmp:
        styled_path = Path(tmp) / "styled.mkv"
        options = ["-i", str(DEMO_CLIP), "-o", str(styled_path), "--no-audio", "--style-every", f"{every:g}",
                   "--max-frames", str(max(picks) + 1), "--no-dashboard", "--crf", "12"]
        for style in styles:
            options += ["-s", style]
        run_stream(stream_parser().parse_args(options))
        source = FileSource(str(styled_path))
        picked = {f.index: f.image for f in source.frames() if f.index in picks}
        source.close()
    tiles = []
    for index in picks:
        image = picked[index]
        tile = Image.fromarray(image).resize((width, round(image.shape[0] * width / image.shape[1])), Image.LANCZOS)
        draw = ImageDraw.Draw(tile)
        label = f"frame {index}"
        draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
        draw.text((4, 2), label, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    out = IMAGES / name
    Image.fromarray(np.concatenate(tiles, axis=1)).save(out, quality=85)
    return out


def dashboard_svg(style: str, frames: int) -> Path:
    from rich.console import Console

    from nstream.dashboard import render

    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        run_stream(stream_parser().parse_args(["-i", str(DEMO_CLIP), "-o", str(Path(tmp) / "o.mp4"), "-s", style,
                                               "--max-frames", str(frames), "--no-dashboard", "--stats-json", str(stats)]))
        snapshot = json.loads(stats.read_text())
    console = Console(record=True, width=110, file=open("/dev/null", "w"))  # noqa: SIM115 - recorded, not shown
    console.print(render(snapshot))
    out = IMAGES / "dashboard.svg"
    console.save_svg(str(out), title="python stream.py")
    return out


def tf26_sheet(content: Path, tile: int = 220, columns: int = 7, gap: int = 4, label: int = 18, width: int = 640) -> Path:
    """The photo, then tf26-00 .. tf26-25, each labelled with its ``-s`` name: stylized at ``width`` (a
    video's size; the styles' strokes are sized for it) and shown scaled down to ``tile``."""
    from PIL import ImageDraw

    from nstream.models.style_spec import tf26_names

    big = load_photo(content, width)
    photo = big.resize((tile, round(big.height * tile / big.width)), Image.LANCZOS)

    def shrink(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize(photo.size, Image.LANCZOS))

    tiles = [("photo", np.asarray(photo))] + [(name, shrink(stylize_still(name, big))) for name in tf26_names()]
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (tile + gap) + gap, rows * (photo.height + label + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (name, image) in enumerate(tiles):
        r, c = divmod(n, columns)
        x, y = gap + c * (tile + gap), gap + r * (photo.height + label + gap)
        draw.text((x + 2, y + 3), name, fill="black")
        sheet.paste(Image.fromarray(image), (x, y + label))
    out = IMAGES / "tf26_sheet.jpg"
    sheet.save(out, quality=85)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default=DEFAULT_STYLE)
    parser.add_argument("--content", type=Path, default=ROOT.parent / "shared" / "data" / "content" / "tubingen.jpg")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--only", choices=["still", "strip", "dashboard", "gallery", "flicker", "switch", "tf26", "morph",
                                           "fine"],
                        help="make just one picture")
    parser.add_argument("--gallery-styles", default="starry_night,wave,the_scream,udnie,woman_with_hat")
    parser.add_argument("--plain", type=Path, help="--only fine: the plain lite checkpoint to compare with")
    args = parser.parse_args()
    if args.only == "fine" and args.plain is None:
        parser.error("--only fine needs --plain PATH (a plain starry_night lite checkpoint)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    makers = {
        "still": lambda: still(args.style, args.content, args.width),
        "strip": lambda: strip(args.style, frames=4, step=30, width=320),
        "dashboard": lambda: dashboard_svg(args.style, frames=30),
        "gallery": lambda: gallery(args.gallery_styles.split(","), args.content, width=256),
        "switch": lambda: switch_strip(["starry_night_lite", "the_scream_lite"], every=2.0, picks=[48, 49, 50, 51, 52, 54]),
        "tf26": lambda: tf26_sheet(args.content),
        "fine": lambda: fine(ROOT.parent / "shared" / "data" / "content" / "chicago.jpg", args.plain),
        "morph": lambda: switch_strip([str(ROOT / "nstream" / "paintings" / name) for name in
                                       ("starry_night.jpg", "the_scream.jpg")],
                                      every=2.0, picks=[48, 50, 53, 56, 59, 62], name="morph.jpg"),
        "flicker": lambda: flicker(f"{args.style}_lite", ROOT.parent / "shared" / "data" / "video" / "bikes.mp4", frames=100),
    }
    for name, make in makers.items():
        if args.only in (None, name) and (name != "fine" or args.plain):
            print(make())


if __name__ == "__main__":
    main()

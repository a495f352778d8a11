"""Held-out perceptual losses of trained styles: compares architectures trained on one style.

    python bench/style_quality.py --style-image STYLE.jpg --images DIR [--count 20] MODEL.pth [MODEL.pth ...]

Each model stylizes the first ``count`` images of DIR (images it was not trained on, e.g.
BSDS500's test split) at 256 px; prints, per model, the mean content and style loss terms of the
training objective (the same loss network, layers and weights as ``nstream train``, read from the
checkpoint's metadata) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from nstream.lossnet import build_encoder  # noqa: E402
from nstream.models.checkpoints import load_style_model  # noqa: E402
from nstream.train import TrainingLoss, list_images, load_rgb, training_layers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--style-image", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    images = [load_rgb(p, args.size) for p in list_images(args.images)[: args.count]]
    for path in args.models:
        model, meta = load_style_model(path)
        content_layers, style_layers = training_layers(meta.get("loss_net", "random"))
        encoder = build_encoder(meta.get("loss_net", "random"), [*content_layers, *style_layers], "vgg16",
                                seed=meta.get("seed", 0))
        style = load_rgb(args.style_image, meta.get("style_size", 256))
        weights = meta.get("weights", {"content": 1.0, "style": 5.0, "tv": 0.0})
        criterion = TrainingLoss(encoder, style, weights, content_layers, style_layers)
        totals = {"content": 0.0, "style": 0.0}
        with torch.no_grad():
            for image in images:
                h, w = image.shape[-2] // 4 * 4, image.shape[-1] // 4 * 4
                content = image[..., :h, :w]
                terms = criterion((model(content * 255.0) / 255.0).clamp(0, 1), content)
                for key in totals:
                    totals[key] += float(terms[key]) / len(images)
        print(json.dumps({"model": Path(path).name, "arch": meta.get("arch"), "images": len(images),
                          **{k: round(v, 4) for k, v in totals.items()}}))


if __name__ == "__main__":
    main()

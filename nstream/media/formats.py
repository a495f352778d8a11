"""Which file suffixes are images, videos and style images: the one list every command uses.

Images are what OpenCV reads and writes on every platform; videos are the containers our sinks
mux (suffix -> FFmpeg muxer). Sources never trust a suffix alone for videos: PyAV opens the file and
says whether it is one.
"""

from __future__ import annotations

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"})
VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                    ".avi": "avi", ".gif": "gif", ".ts": "mpegts", ".flv": "flv"}
# a style is a picture: any image, or the first frame of a GIF
STYLE_IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".gif"}


def is_image(name: str) -> bool:
    """Whether a path or file name has an image suffix (any case)."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_SUFFIXES

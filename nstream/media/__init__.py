"""Media in and out: sources, sinks and the audio that travels beside the frames."""

# OpenCV must be loaded before PyAV: both bundle FFmpeg libraries, and with PyAV's loaded
# first, OpenCV's Qt preview window hangs in namedWindow (seen with av 18 + opencv 5.0).
import cv2  # noqa: F401, I001

from nstream.media.sinks import Sink, open_sink
from nstream.media.sources import Source, open_source

__all__ = ["Sink", "Source", "open_sink", "open_source"]

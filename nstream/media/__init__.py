"""Media in and out: sources, sinks and the audio that travels beside the frames."""

from nstream.media.sinks import Sink, open_sink
from nstream.media.sources import Source, open_source

__all__ = ["Sink", "Source", "open_sink", "open_source"]

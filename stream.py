#!/usr/bin/env python3
"""Stylize a video file, webcam or network stream: see ``python stream.py --help``."""

import sys

from nstream.cli import stream_main

if __name__ == "__main__":
    sys.exit(stream_main())

#!/usr/bin/env python3
"""Style transfer by optimization (Gatys–Ruder) for stills and videos: see ``python offline.py --help``."""

import sys

from nstream.offline_cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Several styles loaded at once, one of them active: switch while a stream runs.

``stream.py -s starry_night_lite -s wave_lite -o window`` builds and warms up every style's engine
before the first frame, so a switch costs nothing at run time: the next frame simply goes through
another network. With the temporal blend on, the old style fades out over a few frames as its
history decays (weight a^k after k frames) instead of cutting.

How to switch: in the preview window, ``n`` or space for the next style, ``p`` for the previous
one, ``1``-``9`` to pick one; without a window (a virtual webcam, an RTSP push), send the process
``SIGUSR1`` for the next style (``kill -USR1 PID``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NEXT_KEYS = (ord("n"), ord(" "))
PREVIOUS_KEYS = (ord("p"),)


class StyleSwitch:
    """``switch(image) -> image`` through the active style's stylizer; ``next``/``previous``/``select``
    change which one, from any thread (the pipeline's workers read it once per frame)."""

    def __init__(self, names: Sequence[str], stylizers: Sequence[Callable[[np.ndarray], np.ndarray]],
                 info: dict[str, Any] | None = None) -> None:
        if not names or len(names) != len(stylizers):
            raise ValueError(f"{len(names)} style names for {len(stylizers)} stylizers")
        self.names = list(names)
        self.stylizers = list(stylizers)
        self.index = 0
        self.lock = threading.Lock()
        self.info: dict[str, Any] = info if info is not None else {}
        self.info.update(style=self.names[0], style_switches=0)
        if len(self.names) > 1:
            self.info["styles"] = list(self.names)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.stylizers[self.index](image)

    @property
    def name(self) -> str:
        return self.names[self.index]

    def select(self, index: int) -> None:
        """Make style ``index`` (0-based, wraps around) the active one."""
        with self.lock:
            index %= len(self.names)
            if index == self.index:
                return
            self.index = index
            self.info["style"] = self.names[index]
            self.info["style_switches"] = self.info.get("style_switches", 0) + 1
        log.info("style: %s", self.names[index])

    def next(self) -> None:
        self.select(self.index + 1)

    def previous(self) -> None:
        self.select(self.index - 1)

    def on_key(self, key: int) -> None:
        """A key pressed in the preview window (``cv2.waitKey``'s code, low byte)."""
        if key in NEXT_KEYS:
            self.next()
        elif key in PREVIOUS_KEYS:
            self.previous()
        elif ord("1") <= key <= ord("9") and key - ord("1") < len(self.names):
            self.select(key - ord("1"))

    def install_signal(self) -> Callable[[], None]:
        """SIGUSR1 switches to the next style (where the platform has it); returns the restorer."""
        usr1 = getattr(signal, "SIGUSR1", None)
        if usr1 is None or len(self.names) < 2 or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(usr1)
        signal.signal(usr1, lambda *_: self.next())
        return lambda: signal.signal(usr1, previous)

"""Several styles loaded at once, one of them active: switch while a stream runs.

``stream.py -s starry_night_lite -s wave_lite -o window`` builds and warms up every style's engine
before the first frame, so a switch costs nothing at run time: the next frame simply goes through
another network. With the temporal blend on, the old style fades out over a few frames as its
history decays (weight a^k after k frames) instead of cutting.

How to switch: in the preview window, ``n`` or space for the next style, ``p`` for the previous
one, ``1``-``9`` to pick one; without a window (a virtual webcam, an RTSP push), send the process
``SIGUSR1`` for the next style (``kill -USR1 PID``). ``--style-every SECONDS`` moves on to the next
style every so many seconds of the stream's own clock (the frames' timestamps, from 0 for a file,
from the first frame for a live source), so a file comes out the same however fast it was
processed; a key or a signal still moves the whole cycle on by one.

Between two styles of one conditioned network (two paintings, two of the 26 styles) a switch is a
morph: for ``morph`` seconds of the stream's clock the style vector moves linearly from the old
style's to the new one's, so the picture changes its brushwork gradually instead of fading between
two pictures.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.stats import STYLE, STYLE_SWITCHES, STYLES

log = logging.getLogger(__name__)

NEXT_KEYS = (ord("n"), ord(" "))
PREVIOUS_KEYS = (ord("p"),)


def check_every(every: float | None, styles: int) -> None:
    """``--style-every`` must be positive and have styles to cycle through."""
    if every is not None and not every > 0:
        raise NStreamError(f"--style-every {every}: give a positive number of seconds")
    if every is not None and styles < 2:
        raise NStreamError("--style-every needs two or more styles: repeat -s")


def morphable(a: Any, b: Any) -> bool:
    """Two stylizers whose styles are vectors of one engine's network can be morphed into each other."""
    return getattr(a, "style", None) is not None and getattr(b, "style", None) is not None and a.engine is b.engine


class StyleSwitch:
    """``switch(image) -> image`` through the active style's stylizer; ``next``/``previous``/``select``
    change which one, from any thread (the pipeline's workers read it once per frame)."""

    def __init__(self, names: Sequence[str], stylizers: Sequence[Callable[..., np.ndarray]],
                 info: dict[str, Any] | None = None, every: float | None = None, live: bool = False,
                 morph: float = 0.0) -> None:
        if not names or len(names) != len(stylizers):
            raise ValueError(f"{len(names)} style names for {len(stylizers)} stylizers")
        check_every(every, len(names))
        self.names = list(names)
        self.stylizers = list(stylizers)
        self.index = 0  # the active style; with ``every``, the offset added to the clock's slot
        self.every = every
        self.origin: float | None = None if live else 0.0  # where the stream's clock starts
        self.slot = 0  # the clock's slot of the newest frame seen
        self.morph = morph  # seconds a switch between two conditioned styles takes
        self.newest: float | None = None  # timestamp of the newest frame seen (where a key's morph starts)
        self.morph_from: tuple[int, float] | None = None  # (previous style, start) of the last key switch
        self.lock = threading.Lock()
        self.info: dict[str, Any] = info if info is not None else {}
        self.info.update({STYLE: self.names[0], STYLE_SWITCHES: 0})
        if len(self.names) > 1:
            self.info[STYLES] = list(self.names)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.stylizers[self.active](image)


    def stylize(self, frame: Frame) -> np.ndarray:
        """The frame's pixels through the style active at its timestamp (``every``) or now."""
        seconds = frame.seconds
        with self.lock:
            if seconds is not None:
                self.newest = seconds if self.newest is None else max(self.newest, seconds)
            if self.every is None or seconds is None:
                index, since = self.active, self.morph_from
            else:
                if self.origin is None:
                    self.origin = seconds
                slot = max(0, int((seconds - self.origin) // self.every))
                if slot > self.slot:  # a later frame: the cycle moves on (an earlier one, still in flight, keeps its slot)
                    self.slot = slot
                    self._report(self.active)
                index = self._index_at(slot)
                since = (self._index_at(slot - 1), self.origin + slot * self.every) if slot > 0 else None
        return self._through(index, since, frame)

    def _through(self, index: int, since: tuple[int, float] | None, frame: Frame) -> np.ndarray:
        """Stylize with style ``index``; within ``morph`` seconds after a switch from another style of the
        same conditioned network (``since``: that style and the switch time), with the vector in between."""
        target = self.stylizers[index]
        if since is not None and self.morph > 0 and frame.seconds is not None and since[0] != index:
            source = self.stylizers[since[0]]
            progress = (frame.seconds - since[1]) / self.morph
            if 0 <= progress < 1 and morphable(source, target):
                return target(frame.image, style=(1 - progress) * source.style + progress * target.style)
        return target(frame.image)

    def _index_at(self, slot: int) -> int:
        """The style of a frame in the clock's ``slot``."""
        return (slot + self.index) % len(self.names)

    @property
    def active(self) -> int:
        """Which style the newest frame goes through."""
        return self._index_at(self.slot) if self.every else self.index

    @property
    def name(self) -> str:
        return self.names[self.active]

    def select(self, index: int) -> None:
        """Make style ``index`` (0-based, wraps around) the active one."""
        with self.lock:
            shift = self.slot if self.every else 0
            offset = (index - shift) % len(self.names)
            if offset == self.index:
                return
            if self.newest is not None:
                self.morph_from = (self.active, self.newest)
            self.index = offset
            self._report(index % len(self.names))

    def _report(self, active: int) -> None:
        if self.info.get(STYLE) == self.names[active]:
            return
        self.info[STYLE] = self.names[active]
        self.info[STYLE_SWITCHES] = self.info.get(STYLE_SWITCHES, 0) + 1
        log.info("style: %s", self.names[active])

    def next(self) -> None:
        self.select(self.active + 1)

    def previous(self) -> None:
        self.select(self.active - 1)

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


class NetworkStage:
    """The pipeline stage that runs the network: each frame through the switch's active style.
    Unordered: a frame's style depends on its timestamp or the switch, not on the frames before it."""

    name = "network"
    ordered = False

    def __init__(self, switch: StyleSwitch) -> None:
        self.switch = switch

    def prepare(self, frame: Frame) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        frame.image = self.switch.stylize(frame)
        return frame

    def close(self) -> None:
        """Release every engine once (styles of one conditioned network share theirs)."""
        for engine in {id(each.engine): each.engine for each in self.switch.stylizers}.values():
            engine.close()

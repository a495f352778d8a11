#!/usr/bin/python3
"""A real RTSP server for the tests: Debian's gst-rtsp-server, run by the SYSTEM python3.

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 PORT [MOUNT]

Serves the H.264 video of CLIP.mp4 (an mp4/mov made by ``conftest.make_clip``) at
``rtsp://127.0.0.1:PORT/MOUNT`` (MOUNT defaults to ``clip``), paced at the clip's own rate,
to every client from its start. It listens on 127.0.0.1 only and prints one line per event
on stdout, so the tests can follow it: ``ready``, ``client``, ``play``, ``closed``.
Exit status 3 when GStreamer or gst-rtsp-server is missing, 4 when the port cannot be bound.
It runs until it is killed.
"""

from __future__ import annotations

import sys


def _say(word: str) -> None:
    print(word, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    clip, port = argv[0], int(argv[1])
    mount = "/" + (argv[2] if len(argv) == 3 else "clip").lstrip("/")
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f"rtsp_server: gst-rtsp-server is not available ({exc})", file=sys.stderr)
        return 3
    Gst.init(None)
    for element in ("filesrc", "qtdemux", "h264parse", "rtph264pay"):
        if Gst.ElementFactory.find(element) is None:
            print(f"rtsp_server: the GStreamer element {element} is missing", file=sys.stderr)
            return 3

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = clip.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse '
                       "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(False)  # every client gets the clip from its first frame
    server.get_mount_points().add_factory(mount, factory)

    def on_client(_server: object, client: object) -> None:
        _say("client")
        client.connect("play-request", lambda *_: _say("play"))
        client.connect("closed", lambda *_: _say("closed"))

    server.connect("client-connected", on_client)
    try:
        if server.attach(None) == 0:
            raise GLib.Error("attach failed")
    except GLib.Error as exc:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{port} ({exc})", file=sys.stderr)
        return 4
    _say("ready")
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

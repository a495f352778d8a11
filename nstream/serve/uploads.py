"""Uploads: a multipart body streamed to disk under a size limit, then opened before it is accepted.

Nothing of an upload is held whole in memory: file parts go to disk chunk by chunk as they arrive,
into files whose names the server chooses (the client's filename is kept as display text only, with
anything path-like taken out). Past the size limit the rest of the body is read and thrown away (up
to a bound), so the client gets its 413 instead of a reset connection. A file is accepted only when
the project's own readers open it: PyAV for video (the same :class:`FileSource` a job then reads,
plus a pass over every packet that finds a file cut short), Pillow for images; never by extension
or by the content type the client claims.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nstream.errors import NStreamError

DRAIN_LIMIT = 64 * 1024 * 1024  # bytes past the limit read and dropped before giving up on a polite 413
FIELD_LIMIT = 1024  # bytes of a text field
MAX_PIXELS = 50_000_000  # an image larger than this is refused before it is decoded
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "PPM": ".ppm"}


class UploadError(Exception):
    """A refused upload: the HTTP status and one line for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """The client's file name as harmless display text: its last path part, printable, at most 80 chars."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable() and ch not in '"<>|*?:')
    name = name.strip(" .")[:80]
    return name or fallback


@dataclass
class ReceivedFile:
    """One file part as stored: where the server put it, how big it is, what the client called it."""

    path: Path
    size: int
    filename: str


@dataclass
class Form:
    files: dict[str, ReceivedFile] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


class _FormWriter:
    """python-multipart callbacks: file parts into ``folder/<field>.upload``, text fields into memory."""

    def __init__(self, folder: Path, max_bytes: int, file_fields: tuple[str, ...], text_fields: tuple[str, ...]) -> None:
        self.folder, self.max_bytes = folder, max_bytes
        self.file_fields, self.text_fields = file_fields, text_fields
        self.form = Form()
        self.stored = 0  # file bytes written so far, all parts together
        self.over = False
        self.error: UploadError | None = None
        self.header_name, self.header_value = b"", b""
        self.disposition = b""
        self.part: tuple[str, str | None] | None = None  # (field, filename or None for text)
        self.handle: IO[bytes] | None = None
        self.text = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value_part, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data, "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.disposition, self.part = b"", None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_part(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        is_file = filename is not None
        if (is_file and name not in self.file_fields) or (not is_file and name not in self.text_fields):
            known = ", ".join(self.file_fields + self.text_fields)
            self.fail(400, f"unexpected form field {name!r} ({'file' if is_file else 'text'}): the fields are {known}")
            return
        if name in self.form.files or name in self.form.fields:
            self.fail(400, f"form field {name!r} given twice")
            return
        self.part = (name, filename.decode("utf-8", "replace") if is_file else None)
        if is_file:
            self.handle = open(self.folder / f"{name}.upload", "wb")  # noqa: SIM115 - closed in part_end
        else:
            self.text = bytearray()

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.part is None or self.error is not None:
            return
        chunk = data[start:end]
        if self.handle is None:
            self.text += chunk
            if len(self.text) > FIELD_LIMIT:
                self.fail(400, f"form field {self.part[0]!r} is longer than {FIELD_LIMIT} bytes")
            return
        self.stored += len(chunk)
        if self.stored > self.max_bytes:
            self.over = True
            self.fail(413, f"the upload is larger than this server's limit of {self.max_bytes / 2**20:g} MB "
                           "(--max-upload-mb): send a shorter or smaller file")
            return
        self.handle.write(chunk)

    def part_end(self) -> None:
        if self.part is None:
            return
        name, filename = self.part
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            path = self.folder / f"{name}.upload"
            self.form.files[name] = ReceivedFile(path, path.stat().st_size, display_name(filename))
        elif self.error is None:
            self.form.fields[name] = self.text.decode("utf-8", "replace").strip()
        self.part = None

    def fail(self, status: int, message: str) -> None:
        if self.error is None:
            self.error = UploadError(status, message)
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        self.part = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary, or a 415 that says what to send instead."""
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(content_type.encode("latin-1"))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(415, "send the job as multipart/form-data (fields: file, and style or style_image)")
    return boundary


async def receive_form(request: Any, folder: Path, max_bytes: int, file_fields: tuple[str, ...],
                       text_fields: tuple[str, ...]) -> Form:
    """Stream ``request``'s multipart body into ``folder``; raise :class:`UploadError` for anything refused
    (after reading the rest of the body, so the client sees the answer)."""
    from python_multipart.multipart import MultipartParser

    boundary = boundary_of(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + DRAIN_LIMIT:
        raise UploadError(413, f"the upload ({int(declared) / 2**20:.0f} MB) is larger than this server's limit of "
                               f"{max_bytes / 2**20:g} MB (--max-upload-mb)")
    writer = _FormWriter(folder, max_bytes, file_fields, text_fields)
    parser = MultipartParser(boundary, writer.callbacks())
    drained = 0
    try:
        async for chunk in request.stream():
            if writer.error is None:
                parser.write(chunk)
            else:
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    break
        if writer.error is None:
            parser.finalize()
    except ValueError as exc:  # python-multipart's malformed-body errors
        raise UploadError(400, f"malformed multipart body ({exc})") from None
    finally:
        writer.close()
    if writer.error is not None:
        raise writer.error
    return writer.form


@dataclass
class Media:
    """What an accepted upload is: ``kind`` video or image, its size, and the suffix the job reads it by."""

    kind: str
    suffix: str
    width: int
    height: int
    frames: int | None = None
    audio: bool = False


def identify(path: Path, what: str = "upload") -> Media:
    """Open ``path`` as an image (Pillow) or a video (PyAV) as the job will; raise :class:`UploadError` if
    neither can, if it is empty, or if it is cut short."""
    if path.stat().st_size == 0:
        raise UploadError(400, f"the {what} is empty: choose a video or image file")
    image = _identify_image(path, what)
    if image is not None:
        return image
    return _identify_video(path, what)


def _identify_image(path: Path, what: str) -> Media | None:
    """A still image's facts, None when Pillow does not know the file (or it is an animation: video)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:
                return None
            fmt, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    if fmt not in IMAGE_SUFFIXES:
        raise UploadError(415, f"the {what} is a {fmt} image: use PNG, JPEG, WebP, BMP or TIFF")
    if width * height > MAX_PIXELS:
        raise UploadError(413, f"the {what} is {width}x{height} pixels: images up to {MAX_PIXELS // 10**6} megapixels")
    from nstream.media.sources import read_image

    try:
        read_image(path, what)
    except NStreamError:
        raise UploadError(400, f"the {what} is a damaged or truncated {fmt} image: upload the complete file") from None
    return Media("image", IMAGE_SUFFIXES[fmt], width, height, 1)


def _identify_video(path: Path, what: str) -> Media:
    """Open with the FileSource a job uses, then read every packet: a file that stops short of the length
    its header states (or with damaged packets) is refused, not half stylized."""
    import av

    from nstream.media.sources import FileSource

    try:
        source = FileSource(str(path))
    except NStreamError as exc:
        reason = str(exc).replace(str(path), f"the {what}")
        raise UploadError(415, f"not a video or image the server can read ({reason})") from None
    try:
        reached, corrupt = 0.0, 0
        for packet in source.container.demux(source.decoder.video):
            corrupt += packet.is_corrupt
            if packet.pts is not None and packet.time_base:
                reached = max(reached, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        length = source.length
        if corrupt or (length is not None and length - (reached - source.origin) > max(0.5, 2 / float(source.info.rate))):
            raise UploadError(400, f"the {what} is a truncated or damaged video (its data stops before the end its "
                                   "header states): upload the complete file")
        info = source.info
        return Media("video", ".video", info.width, info.height, info.frame_count, source.decoder.audio is not None)
    except av.error.FFmpegError as exc:
        raise UploadError(400, f"the {what} is a damaged video ({exc}): upload the complete file") from None
    finally:
        source.close()

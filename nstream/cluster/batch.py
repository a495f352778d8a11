"""``python -m nstream batch INPUTS... --out DIR``: many files, and the shots of long ones, stylized at once.

Every piece of work is a stylizing session built from the same typed config as ``stream.py``
(:func:`nstream.session.build_session`), so a file comes out as ``stream.py`` writes it:

- a file that is not split is one task that runs the whole session, audio and all, into its output;
- a long file is cut at its shot boundaries (:mod:`.shots`: where the temporal stage would reset its
  history anyway), neighbouring short shots joined; each piece is a task whose session reads frames
  [a, b) and writes every finished frame into the work folder; the driver then plays the whole file
  through the same pipeline with the stored frames in place of the network and muxes the audio, so
  frame count, timing and audio are the whole-file run's.

Without ``--cluster`` the pieces run one after another in this process (the same code). A rerun with
the same settings skips finished files and pieces; a piece interrupted mid-way starts again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nstream.config import StreamConfig
from nstream.errors import NStreamError

DEFAULT_SPLIT_FRAMES = 300  # files at least this long are split into shots ("auto")
DEFAULT_PIECE_FRAMES = 50  # shots shorter than this are joined with their neighbours
NOT_IN_BATCH = ("live", "width", "height", "rtsp_transport", "timeout", "read_timeout", "reconnect_for", "input",
                "output", "no_dashboard")


@dataclass
class Piece:
    """One task: frames [begin, end) of ``input`` into the work folder, or (``whole``) the whole session."""

    input: str
    begin: int
    end: int
    whole: bool
    work: str
    pts: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{Path(self.input).name}[{self.begin}:{self.end}]" if not self.whole else Path(self.input).name

    @property
    def frames(self) -> int:
        return self.end - self.begin

    @property
    def marker(self) -> Path:
        return Path(self.work) / "pieces" / ("whole.done" if self.whole else f"{self.begin:06d}-{self.end:06d}.done")


@dataclass
class FileJob:
    """One input file: its output, its session config, its work folder and its pieces."""

    input: str
    output: str
    config: StreamConfig
    work: Path
    pieces: list[Piece]

    @property
    def split(self) -> bool:
        return not self.pieces[0].whole

    @property
    def joined_marker(self) -> Path:
        return self.work / "joined.done"

    def finished(self) -> bool:
        """Done by an earlier run: its output is there and was finished with these settings."""
        marker = self.joined_marker if self.split else self.pieces[0].marker
        return marker.exists() and Path(self.output).exists()


def build_parser() -> argparse.ArgumentParser:
    """``stream.py``'s style, engine, temporal and encoding options, plus the batch's own."""
    from nstream.cli import stream_parser

    parser = stream_parser()
    parser.prog = "python -m nstream batch"
    parser.description = __doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.epilog = "Settings are stream.py's; each output is OUT/<input name>.mp4 (images keep their suffix)."
    for action in parser._actions:  # noqa: SLF001 - hide what a batch of files does not use
        if action.dest in NOT_IN_BATCH:
            action.help = argparse.SUPPRESS
    group = parser.add_argument_group("batch")
    group.add_argument("inputs", nargs="+", metavar="INPUT", help="video or image files")
    group.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    group.add_argument("--cluster", metavar="ADDRESS", help="auto (a local Ray for this run), ray://HOST:PORT or "
                       "HOST:PORT (an existing cluster); default: one process, no Ray")
    group.add_argument("--work", metavar="DIR", help="work folder for finished frames (shared by every node on a "
                       "cluster; default OUT/.nstream-work)")
    group.add_argument("--split", default="auto", choices=("auto", "shots", "none"),
                       help=f"cut files into shots: auto (files of {DEFAULT_SPLIT_FRAMES}+ frames), shots (every "
                            "file), none")
    group.add_argument("--split-frames", type=int, default=DEFAULT_SPLIT_FRAMES, help="what auto counts as long")
    group.add_argument("--piece-frames", type=int, default=DEFAULT_PIECE_FRAMES,
                       help="join shots until a piece has this many frames; with --temporal-strength 0 files are cut "
                            "into pieces of this size anywhere")
    group.add_argument("--task-cpus", type=float, default=1.0, help="CPUs each task reserves on the cluster")
    group.add_argument("--task-gpus", type=float, default=None,
                       help="GPUs each task reserves (default 1 with --device cuda*, else 0)")
    group.add_argument("--retries", type=int, default=3, help="times a task is run again after its worker died")
    group.add_argument("--num-cpus", type=int, help="--cluster auto: CPUs of the local Ray (default all)")
    group.add_argument("--suffix", default=".mp4", help="container of the video outputs (default .mp4)")
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed and checked: the options a batch cannot use are one error line each."""
    args = build_parser().parse_args(argv)
    if args.output:
        raise NStreamError("batch writes OUT/<input name>: give --out DIR, not -o")
    if args.live:
        raise NStreamError("batch stylizes files: --live is for stream.py")
    for name in ("split_frames", "piece_frames", "retries"):
        if getattr(args, name) < (0 if name == "retries" else 1):
            raise NStreamError(f"--{name.replace('_', '-')} {getattr(args, name)}: use 1 or more")
    return args


def plan(args: argparse.Namespace, base: StreamConfig) -> list[FileJob]:
    """A job per input, checked (each one opened) before any work starts; long files split."""
    from nstream.cluster.store import settings_key

    out = Path(args.out)
    work_root = Path(args.work) if args.work else out / ".nstream-work"
    jobs, seen = [], {}
    for name in args.inputs:
        path = Path(name)
        if not path.is_file():
            raise NStreamError(f"input not found: {name} (batch takes video or image files)")
        suffix = path.suffix if path.suffix.lower() in _image_suffixes() else args.suffix
        output = str(out / f"{path.stem}{suffix}")
        if output in seen:
            raise NStreamError(f"{name} and {seen[output]} would both write {output}: rename one")
        seen[output] = name
        config = replace(base, source=replace(base.source, input=str(path)), outputs=[output])
        config.validate()
        work = work_root / f"{path.stem}-{settings_key(config, str(path))}"
        jobs.append(FileJob(str(path), output, config, work, _pieces(args, config, work)))
    return jobs


def _image_suffixes() -> set[str]:
    from nstream.media.sources import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def _pieces(args: argparse.Namespace, config: StreamConfig, work: Path) -> list[Piece]:
    """The file's tasks: one whole session, or its shots (cached in the work folder for a rerun)."""
    from nstream.cluster.shots import Scan, group_shots, scan_shots
    from nstream.session import expected_frames, open_configured_source

    src = config.source
    source = open_configured_source(replace(config, source=replace(src, audio=False)))  # every input opened once: errors now
    try:
        info = source.info
    finally:
        source.close()
    count = expected_frames(info.frame_count, src.loop, src.max_frames) or 0
    whole = [Piece(src.input, 0, count, True, str(work))]
    plain = info.kind == "file" and src.loop == 1 and src.max_frames is None and src.start is None and src.duration is None
    if args.split == "none" or not plain or (args.split == "auto" and count < args.split_frames):
        return whole
    scan_file = work / "scan.json"
    anywhere = config.temporal.strength == 0  # no history: any frame may start a piece
    scan = Scan.load(scan_file) or scan_shots(src.input, None if anywhere else config.temporal.scene_cut)
    work.mkdir(parents=True, exist_ok=True)
    scan.save(scan_file)
    if anywhere:
        size = args.piece_frames
        shots = [(b, min(b + size, scan.count)) for b in range(0, scan.count, size)]
    else:
        shots = group_shots(scan.shots(), args.piece_frames)
    if len(shots) == 1:
        return [replace(whole[0], end=scan.count)]
    return [Piece(src.input, b, e, False, str(work), scan.pts[b:e]) for b, e in shots]


Reporter = Callable[[int, "int | None"], None]


def run_piece(config: StreamConfig, piece: Piece, board: Any) -> dict[str, Any]:
    """Stylize one piece (on a cluster worker, or in this process); mark it done; its figures.

    A split piece continues after the frames already in the work folder (a worker that died, a
    stopped job): none of them is stylized or written again, and the first one left is blended with
    the last one kept exactly as in an unbroken run (see :func:`_resume_session`)."""
    from nstream.cluster.progress import worker_label
    from nstream.session import build_session

    label = worker_label()
    started = time.perf_counter()
    piece.marker.parent.mkdir(parents=True, exist_ok=True)
    piece.marker.with_suffix(".worker").write_text(label + "\n")  # who is on it: for a person, and the fault test
    kept = 0
    if piece.whole:
        session = build_session(config)
    else:
        session, kept = _resume_session(config, piece)
        if session is None:
            return _mark(piece, label, started, 0, [])
    warm = 1 if kept and session.source.begin < piece.begin + kept else 0

    since = time.time()

    def report(done: int, _total: int | None) -> None:
        made = max(0, done - warm)
        if hasattr(board.report, "remote"):
            board.report.remote(piece.key, label, kept + made, made, since)
        else:
            board.report(piece.key, label, kept + made, made, since)

    figures = session.run(on_progress=report)
    made = figures.get("frames_out", 0) - warm
    if not figures.get("complete") or (not piece.whole and kept + made != piece.frames):
        raise NStreamError(f"{piece.key}: stopped after {kept + made} of {piece.frames} frames")
    return _mark(piece, label, started, made, list(session.source.warnings))


def _mark(piece: Piece, label: str, started: float, made: int, warnings: list[str]) -> dict[str, Any]:
    piece.marker.parent.mkdir(parents=True, exist_ok=True)
    piece.marker.write_text(f"{piece.frames}\n")
    return {"piece": piece.key, "made": made, "seconds": time.perf_counter() - started, "worker": label,
            "warnings": warnings}


def _resume_session(config: StreamConfig, piece: Piece) -> tuple[Any, int]:
    """(the session for the frames of ``piece`` not yet in the work folder, how many are), or
    (None, all) when none is left. With the temporal blend on, the session starts one frame early on
    the last kept frame, whose stored output stands in for the network (not run on it): the blend's
    history after a frame is exactly that frame's output, so the next one comes out as unbroken."""
    from nstream.cluster.shots import RangeSource
    from nstream.cluster.store import FrameFolderSink, ResumeStage, frame_path
    from nstream.session import build_session

    folder = Path(piece.work) / "frames"
    kept = 0
    while kept < piece.frames and frame_path(folder, piece.begin + kept).exists():
        kept += 1
    if kept == piece.frames:
        return None, kept
    warm = 1 if kept and config.temporal.strength > 0 else 0
    first = kept - warm
    piece_config = replace(config, outputs=[], source=replace(config.source, audio=False))
    source = RangeSource(piece.input, piece.begin + first, piece.pts[first:])
    sink = FrameFolderSink(folder, skip_below=piece.begin + kept)
    sink.open(source.info)  # a caller's own sinks come opened
    session = build_session(piece_config, source=source, sinks=[sink])
    if warm:
        stages = session.pipeline.parallel  # the network, for every frame but the warm-up one
        stages[0] = ResumeStage(stages[0], folder, piece.begin + first)
    return session, kept


def assemble(job: FileJob) -> dict[str, Any]:
    """The whole file through the pipeline with the stored frames for the network: its own timing,
    frame count and audio, into the outputs ``stream.py`` would open."""
    from nstream.cluster.store import StoredFramesStage
    from nstream.pipeline import Pipeline
    from nstream.session import open_configured_source, open_outputs
    from nstream.stats import PipelineStats

    config = job.config
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    source = open_configured_source(config)
    sinks: list[Any] = []
    try:
        open_outputs(config, source, config.outputs, sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        source.close()
        raise
    stats = PipelineStats()
    pipeline = Pipeline(source, [StoredFramesStage(job.work / "frames")], sinks, queue_size=config.queue_size,
                        stats=stats, workers=2)
    try:
        pipeline.run()
    finally:
        source.close()
    snapshot = stats.snapshot()
    if snapshot["frames_out"] != sum(piece.frames for piece in job.pieces):
        raise NStreamError(f"{job.input}: joined {snapshot['frames_out']} frames of "
                           f"{sum(p.frames for p in job.pieces)}; delete {job.work} and rerun")
    job.joined_marker.write_text(f"{snapshot['frames_out']}\n")
    return snapshot


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nstream batch``: one ``error:`` line and exit 2 for bad input."""
    from nstream.cli_args import run_guarded

    def action() -> None:
        args = parse(list(sys.argv[2:] if argv is None else argv))
        from nstream.cluster.run import run_batch

        run_batch(args)

    return run_guarded(action, sigterm_interrupts=True)

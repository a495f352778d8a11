"""A/B speed of stream.py between two checkouts of the project (a refactor must not cost speed).

    git worktree add --detach /tmp/before <commit>
    python bench/tree_ab.py --a /tmp/before --b . --rounds 3 -- -i ../shared/data/video/bikes.mp4 \
        -s starry_night --max-frames 150 -o null

Runs ``stream.py`` from each checkout in fresh processes, alternating A, B, A, B, ... (these machines
are shared and noisy: alternation spreads the noise over both), reads each run's ``--stats-json`` and
prints one JSON object: fps and CPU seconds per run, the medians per checkout and the ratios B/A.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(tree: Path, arguments: list[str]) -> tuple[float, float]:
    """(frames per second, CPU seconds of the whole process) of one ``stream.py`` run from ``tree`` (its own
    package, not an installed one). CPU time is what a busy machine disturbs least."""
    with tempfile.TemporaryDirectory() as folder:
        stats = Path(folder) / "stats.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, str(tree / "stream.py"), *arguments, "--no-dashboard", "--stats-json", str(stats)],
                       check=True, cwd=tree, capture_output=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return float(json.loads(stats.read_text())["fps"]), round(cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="checkout A (e.g. the commit before a refactor)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("stream_args", nargs=argparse.REMAINDER, help="after --: stream.py's arguments")
    args = parser.parse_args()
    arguments = [a for a in args.stream_args if a != "--"]
    runs: dict[str, list[float]] = {"a": [], "b": []}
    cpu: dict[str, list[float]] = {"a": [], "b": []}
    resolved = [str(Path(a).resolve()) if Path(a).exists() else a for a in arguments]
    for _ in range(args.rounds):
        for key in ("a", "b"):
            fps, seconds = run_once(getattr(args, key).resolve(), resolved)
            runs[key].append(fps)
            cpu[key].append(seconds)
    median = {key: statistics.median(values) for key, values in runs.items()}
    cpu_median = {key: statistics.median(values) for key, values in cpu.items()}
    print(json.dumps({"arguments": arguments, "fps": runs, "median": median,
                      "ratio_b_over_a": round(median["b"] / median["a"], 3), "cpu_s": cpu,
                      "cpu_ratio_b_over_a": round(cpu_median["b"] / cpu_median["a"], 3)}))


if __name__ == "__main__":
    main()

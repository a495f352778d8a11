"""Running nstream on a Ray cluster: batch stylization of many files and offline renders split by shot.

Ray is an optional extra (``pip install 'nstream[cluster]'``); nothing here imports it at module level,
so ``--cluster`` without Ray is one error line and everything else runs unchanged. The pieces:

- :mod:`.connect`: ``--cluster auto | ray://HOST:PORT | HOST:PORT`` to a running Ray, or one started for the run;
- :mod:`.progress`: whole-job progress (frames done of total, per-worker rate, ETA) from an actor workers report to;
- :mod:`.shots`: where a file's shots are (the temporal stage's own scene-cut test) and a source for frames [a, b);
- :mod:`.store`: finished frames as PNG files in a shared work folder, and a stage that plays them back;
- :mod:`.batch` and :mod:`.run`: ``python -m nstream batch`` (planning, the task, joining; running the tasks);
- :mod:`.offline`: ``offline.py --cluster`` / ``--shots``: shots and chunks of a Gatys–Ruder render as tasks.
"""

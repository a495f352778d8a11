"""Gatys–Ruder optimization: stylize by optimizing the pixels themselves (``offline.py``).

One module per concept, all callable from Python without a command line:

- :mod:`.config`: :class:`~.config.OfflineConfig`, one render's typed settings and their checks.
- :mod:`.render`: a render from a config: a still, or a video (:class:`~.render.VideoJob`, whose
  ``render_frames(a, b)`` renders one shot into the work folder).
- :mod:`.losses`: the optimizer's objective on top of :mod:`nstream.losses` (shared with training):
  weights, blended style targets, Ruder's temporal loss.
- :mod:`.loop`: L-BFGS and Adam loops with early stopping and a per-step callback.
- :mod:`.transfer`: one image or frame: style targets, initialization, coarse-to-fine scales.
- :mod:`.video`: Ruder's passes over a span of frames (start images, temporal targets, multi-pass).
- :mod:`.workfolder`: finished frames, cached flow and masks, resume.
- :mod:`.mux`: finished frames into the output with the input's timing and audio.
- :mod:`.report`: progress bars over frames and iterations, and the closing summary.
"""

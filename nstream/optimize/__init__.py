"""Gatys–Ruder optimization: stylize by optimizing the pixels themselves (``offline.py``).

One module per concept:

- :mod:`.losses`: content, Gram style, total-variation and Ruder's temporal loss terms.
- :mod:`.loop`: L-BFGS and Adam loops with early stopping and a per-step callback.
- :mod:`.transfer`: one image or frame: style targets, initialization, coarse-to-fine scales.
- :mod:`.video`: the work folder (frames, cached flow and masks, resume) and the Ruder passes.
- :mod:`.report`: progress bars over frames and iterations, and the closing summary.
"""

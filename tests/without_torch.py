"""``python tests/without_torch.py SCRIPT ARGS``: run SCRIPT as if PyTorch were not installed.

Every import of torch or torchvision fails and ``importlib.util.find_spec`` finds neither, as on a
machine with the light install; at the end the script must not have imported them.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import runpy
import sys

BLOCKED = ("torch", "torchvision")


def blocked(name: str) -> bool:
    return name.split(".")[0] in BLOCKED


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if blocked(name):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def main() -> None:
    sys.meta_path.insert(0, NoTorch())
    real_find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *args, **kwargs: (None if blocked(name)
                                                              else real_find_spec(name, *args, **kwargs))
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        leaked = sorted(name for name in sys.modules if blocked(name))
        if leaked:
            print(f"without_torch: imported {leaked}", file=sys.stderr)


if __name__ == "__main__":
    main()

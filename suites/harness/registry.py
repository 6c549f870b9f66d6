"""Which suites exist: every package under `suites/` that defines `SUITE` (found, not listed).

Adding a suite is adding its package; nothing here changes. Further suites (a plug-in, or the tiny
suite the tests define) come through the CLAIMBENCH_SUITES environment variable: comma-separated
`name=module:attribute` entries.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from .core import Suite

ENV_VAR = "CLAIMBENCH_SUITES"
SUITES_DIR = Path(__file__).resolve().parents[1]
NOT_SUITES = {"harness", "data"}  # packages under suites/ that hold shared machinery


class UnknownSuite(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def entries() -> dict[str, str]:
    """name -> "module:attribute" of every suite: the packages under suites/, then the extras."""
    found = {
        info.name: f"suites.{info.name}:SUITE"
        for info in sorted(pkgutil.iter_modules([str(SUITES_DIR)]), key=lambda i: i.name)
        if info.name not in NOT_SUITES
    }
    for item in filter(None, (s.strip() for s in os.environ.get(ENV_VAR, "").split(","))):
        name, _, target = item.partition("=")
        if not target or ":" not in target:
            raise UnknownSuite(f"{ENV_VAR} entry {item!r} must look like name=module:attribute")
        found[name.strip()] = target.strip()
    return found


def implemented() -> list[str]:
    return list(entries())


def get_suite(name: str) -> Suite:
    known = entries()
    if name not in known:
        raise UnknownSuite(f"unknown suite {name!r}; known suites: {', '.join(sorted(known))}")
    module, _, attribute = known[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("suites", "impl"):
            raise
        raise UnknownSuite(
            f"suite {name!r} needs the package {exc.name!r}, which is not installed: "
            f"pip install -e '.[{name}]' (or '.[all]')"
        ) from exc

"""Which suites exist. Papers whose suite is not written yet are listed as such, not hidden.

Further suites (a plug-in, or the tiny suite the tests define) are added through the
CLAIMBENCH_SUITES environment variable: comma-separated `name=module:attribute` entries.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from .core import Suite

ENV_VAR = "CLAIMBENCH_SUITES"

# name -> (paper, "module:attribute" or None while the suite is not implemented yet)
KNOWN: dict[str, tuple[str, str | None]] = {
    "lora": ("LoRA: Low-Rank Adaptation of Large Language Models (Hu et al. 2021)", "suites.lora:SUITE"),
    "norm": ("Transformers without Tears (Nguyen & Salazar 2019)", None),
    "gtn": ("Gated Transformer Networks for Multivariate Time Series Classification (Liu et al. 2021)",
            "suites.gtn:SUITE"),
    "heater": ("Heater: cold-start recommendation (Zhu et al. SIGIR 2020)", None),
    "pinnersage": ("PinnerSage: multi-modal user embeddings (Pal et al. KDD 2020)", None),
}  # fmt: skip


class UnknownSuite(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def entries() -> dict[str, tuple[str, str | None]]:
    found = dict(KNOWN)
    for item in filter(None, (s.strip() for s in os.environ.get(ENV_VAR, "").split(","))):
        name, _, target = item.partition("=")
        if not target or ":" not in target:
            raise UnknownSuite(f"{ENV_VAR} entry {item!r} must look like name=module:attribute")
        found[name.strip()] = (f"extra suite from {target}", target.strip())
    return found


def implemented() -> list[str]:
    return [name for name, (_, target) in entries().items() if target is not None and _importable(target)]


def _importable(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


def get_suite(name: str) -> Suite:
    known = entries()
    if name not in known:
        raise UnknownSuite(f"unknown suite {name!r}; known suites: {', '.join(sorted(known))}")
    paper, target = known[name]
    if target is None or not _importable(target):
        raise UnknownSuite(f"suite {name!r} ({paper}) is not implemented yet")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)

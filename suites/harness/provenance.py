"""Where a number came from: code version, packages, hardware. Stamped on every row."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = ("torch", "numpy", "scipy", "pandas", "statsmodels", "transformers", "aeon", "scikit-learn", "peft")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@cache
def git_state() -> tuple[str, bool]:
    """(short sha, dirty); ("unknown", False) outside a git checkout.

    results/ is excluded from the dirty check: writing results must not make the code dirty.
    """
    sha = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return sha, bool(status)


@cache
def package_versions() -> str:
    found = []
    for name in TRACKED_PACKAGES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ";".join(found)


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model(device: str) -> str:
    if not device.startswith("cuda"):
        return ""
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "unavailable"


def stamp(device: str, threads: int) -> dict[str, object]:
    sha, dirty = git_state()
    return {
        "git_sha": sha,
        "git_dirty": int(dirty),
        "versions": package_versions(),
        "device": device,
        "cpu": cpu_model(),
        "gpu": gpu_model(device),
        "threads": threads,
    }

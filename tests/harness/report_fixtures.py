"""Small results folders for the forest-plot and site tests: claims.json, runs.csv and a figure,
written in tmp_path, with one claim of every verdict and text that breaks unescaped HTML."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from suites.harness.store import write_runs

HOSTILE = "<script>alert('x')</script> & ||U^T Wq V|| \"quoted\""


def claim_entry(claim_id: str, verdict: str, **fields: Any) -> dict[str, Any]:
    """A claims.json entry with every field judge.judge writes; `fields` override them."""
    entry = {
        "id": claim_id,
        "family": claim_id.rsplit(".", 1)[0],
        "statement": f"statement of {claim_id}",
        "source": "Table 1",
        "paper_value": None,
        "paper_value_text": "not reported",
        "metric": "acc",
        "direction": "greater",
        "claimed_region": "> 0",
        "null_region": "< 0",
        "unit": "task/seed",
        "effect_kind": "difference",
        "machine_dependent": False,
        "tolerance": 1e-6,
        "protocol": "",
        "evidence": None,
        "flagged": None,
        "test": "paired t",
        "measured": 1.0,
        "ci_low": 0.5,
        "ci_high": 1.5,
        "ci_level": 0.95,
        "p_value": 0.01,
        "p_raw": 0.01,
        "n": 3,
        "verdict": verdict,
        "notes": "",
    }
    entry.update(fields)
    return entry


def sample_claims() -> list[dict[str, Any]]:
    """One claim per verdict; units and scales differ from row to row, as in a real suite."""
    return [
        claim_entry("toy.speed.ratio", "reproduced", effect_kind="ratio", claimed_region="> 1",
                    null_region="< 1", measured=1.3, ci_low=1.2, ci_high=1.4, paper_value=1.33,
                    paper_value_text="1.33x", statement=HOSTILE, source="Table <2>",
                    evidence={"required": "converged", "runs": 3, "met": 3, "short": {}}),
        claim_entry("toy.speed.size", "partially reproduced", effect_kind="ratio", claimed_region="(1.25, 1.41)",
                    null_region="< 1", measured=1.1, ci_low=1.05, ci_high=1.15, paper_value=1.33),
        claim_entry("toy.acc.floor", "not reproduced", direction="at_least", claimed_region="> 96.8",
                    null_region="", measured=80.0, ci_low=78.0, ci_high=82.0, paper_value=98.8,
                    paper_value_text="98.8%", metric="acc",
                    evidence={"required": "converged", "runs": 3, "met": 1, "short": {"cap": 2}}),
        claim_entry("toy.acc.noninf", "inconclusive", direction="noninferior", claimed_region="> -1",
                    null_region="", measured=-0.5, ci_low=-2.0, ci_high=1.0, notes="about 9 units would decide it"),
        claim_entry("toy.count.params", "measured", direction="measurement", claimed_region="", null_region="",
                    measured=1.75e11, ci_low=1.74e11, ci_high=1.76e11, p_value=None, p_raw=None),
        claim_entry("toy.acc.missing", "not run", measured=None, ci_low=None, ci_high=None, ci_level=None,
                    p_value=None, p_raw=None, n=0, notes="dataset 'X' is missing <from> the data directory"),
    ]  # fmt: skip


def sample_rows() -> list[dict[str, Any]]:
    rows = []
    for seed in (1, 2, 3):
        for method, value in (("ours", 90.0 + seed), ("base", 88.0 + seed)):
            rows.append(dict(experiment="main", task="digits", method=method, params="{}", seed=seed, metric="acc",
                             value=value, status="ok", note="", wall_s=1.5))  # fmt: skip
    rows.append(dict(experiment="main", task="missing<X>", method="ours", params="{}", seed=1, metric="acc",
                     value=float("nan"), status="not_run", note="dataset <X> missing", wall_s=0.0))  # fmt: skip
    return rows


def tiny_png(path: Path) -> Path:
    from matplotlib.figure import Figure

    from suites.harness.figures import save_png

    fig = Figure(figsize=(1, 1))
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1])
    return save_png(fig, path, dpi=20)


def write_results(results_dir: Path, suite: str = "toy", profile: str = "quick", claims=None, rows=None) -> Path:
    """A results/<suite>/<profile>/ folder as `claimbench report` leaves it (provenance left out)."""
    folder = results_dir / suite / profile
    folder.mkdir(parents=True, exist_ok=True)
    document = {"schema_version": 1, "suite": suite, "profile": profile,
                "claims": sample_claims() if claims is None else claims}  # fmt: skip
    (folder / "claims.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    write_runs(folder / "runs.csv", sample_rows() if rows is None else rows)
    tiny_png(folder / "figures" / "accuracy.png")
    return folder


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def repo_with_history(root: Path) -> Path:
    """A git repository whose results changed twice: toy.acc.noninf goes inconclusive -> reproduced,
    and a commit that touches nothing under results/ must not appear in any claim's history."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    claims = sample_claims()
    write_results(root / "results", claims=claims)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first results")
    (root / "README.md").write_text("unrelated\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "unrelated change")
    later = [dict(c) for c in claims]
    later[3].update(verdict="reproduced", measured=0.25, ci_low=-0.5, ci_high=1.0)
    write_results(root / "results", claims=later)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "rerun <quick>")
    return root

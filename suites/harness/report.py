"""Reports, all generated from results/: claims.json, report.md, figures, REPRODUCE.md, README table.

Nothing here measures anything; `claimbench report` rebuilds every file from the committed
runs.csv files without rerunning a cell. No timestamps are written, so `git diff results/` shows
only what changed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from . import forest, provenance, store
from . import judge as judging
from .core import Suite
from .registry import get_suite, implemented
from .store import read_claims, read_runs, write_claims

PROFILE_ORDER = ("standard", "quick", "smoke", "full")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
SUITES_START, SUITES_END = "<!-- suites:start -->", "<!-- suites:end -->"


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    value = float(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}"


def fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ours(claim: Mapping[str, Any]) -> str:
    if claim["verdict"] == judging.NOT_RUN:
        return "not run"
    if claim["ci_low"] is None:
        return fmt(claim["measured"])
    level = claim.get("ci_level")
    shown = (
        ""
        if level is None or level >= 1
        else f" ({level:.0%})"
        if level * 100 == round(level * 100)
        else f" ({level:.1%})"
    )
    return f"{fmt(claim['measured'])} [{fmt(claim['ci_low'])}, {fmt(claim['ci_high'])}]{shown}"


def p_text(claim: Mapping[str, Any]) -> str:
    raw, adjusted = claim.get("p_raw"), claim.get("p_value")
    if raw is None:
        return "n/a"
    return fmt_p(raw) if adjusted is None or adjusted == raw else f"{fmt_p(raw)} / {fmt_p(adjusted)}"


def claims_table(judged: Sequence[Mapping[str, Any]], with_protocol: bool = False) -> str:
    with_evidence = any(c.get("evidence") for c in judged)  # a column only for suites with trained models
    with_looks = any(c.get("looks") for c in judged)  # a sequential (until-decided) run
    rows = []
    for c in judged:
        region = c.get("claimed_region") or "-"
        row = [c["id"], c["paper_value_text"], ours(c), region, c["test"], p_text(c), f"{c['n']} {c.get('unit', '')}",
               c["verdict"]]  # fmt: skip
        if with_evidence:
            row.append(judging.evidence_text(c.get("evidence")))
        if with_looks:
            row.append(f"{c['looks']} at alpha {c['decision_level']:.3g}" if c.get("looks") else "-")
        if with_protocol:
            row.append(c["protocol"] or "-")
        rows.append(row)
    headers = ["claim", "paper", "ours: effect [decision interval]", "claimed region", "test", "p raw / Holm in family",
               "n (unit)", "verdict"]  # fmt: skip
    if with_evidence:
        headers.append("evidence: runs that met it")
    if with_looks:
        headers.append("looks (level of the last)")
    if with_protocol:
        headers.append("protocol differences")
    return tabulate(rows, headers=headers, tablefmt="github")


RULE_SUMMARY = (
    "How to read a verdict: every claim declares its claimed region and, for a direction, its null side before "
    "any run. The decision interval (level shown; 1 - 2 alpha/m with m the claims of the claim's family) decides: "
    "reproduced = inside the claimed region; partially reproduced = clear of the null side, size not confirmed; "
    "not reproduced = outside the claimed region; inconclusive = otherwise (the notes say how many units would "
    "decide it); measured = a quantity reported without a verdict. n counts independent units."
)


def measurements_table(frame: pd.DataFrame) -> str:
    """Mean, sd and count of every metric per experiment x task x method x params."""
    ok = frame[frame["status"].isin(["ok", "diverged"])]
    if ok.empty:
        return "No finished cells."
    grouped = ok.groupby(["experiment", "task", "method", "params", "metric"], sort=False)["value"]
    summary = grouped.agg(["mean", "std", "count"]).reset_index()
    rows = [
        [r.experiment, r.task, r.method, "" if r.params == "{}" else r.params, r.metric, fmt(r.mean),
         fmt(r.std) if r.count > 1 else "", r.count]
        for r in summary.itertuples()
    ]  # fmt: skip
    return tabulate(rows, headers=["experiment", "task", "method", "params", "metric", "mean", "sd", "n"],
                    tablefmt="github")  # fmt: skip


def provenance_line(folder: Path) -> str:
    return provenance.describe(folder)


def cost_seconds(frame: pd.DataFrame) -> float:
    """Total cell wall time (one value per cell; rows of one cell share it)."""
    per_cell = frame.drop_duplicates(["experiment", "task", "method", "params", "seed"])
    return float(per_cell["wall_s"].astype(float).sum())


def _device_of(folder: Path, frame: pd.DataFrame) -> str:
    if "device" in frame.columns and not frame.empty:
        return str(frame["device"].iloc[0])
    machines = provenance.machines_of(provenance.read(folder) or {})
    return str(machines[0].get("device", "cpu")) if machines else "cpu"


def write_suite_report(
    suite: Suite, profile: str, results_dir: Path, judged: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Judge the claims from runs.csv (or take `judged`, e.g. a sequential run's entries, judged at
    their looks' levels) and write claims.json, figures/ and report.md."""
    folder = Path(results_dir) / suite.name / profile
    rows = read_runs(folder / "runs.csv")
    frame = judging.frame_of(rows)
    device = _device_of(folder, frame)
    load_units = getattr(store, "load_units", None)
    if judged is None:
        judged = judging.judge(suite.claims, rows, device=device, units=load_units(folder) if load_units else None)
    write_claims(folder / "claims.json", suite.name, profile, judged)
    figures: list[Path] = []
    if suite.figures is not None and not frame.empty:
        figure_dir = folder / "figures"
        figure_dir.mkdir(parents=True, exist_ok=True)
        figures = suite.figures(frame, judged, figure_dir)
    if judged:
        title = f"{suite.title} ({profile}): every claim against the paper"
        figures.insert(0, forest.forest_plot(judged, folder / "figures" / "forest.png", title))
    lines = [
        f"# {suite.title}: `{suite.name}` suite, profile `{profile}`",
        "",
        "Generated by `claimbench report` from `runs.csv`; do not edit by hand.",
        "",
    ]
    if not frame.empty:
        counts = frame.drop_duplicates(["experiment", "task", "method", "params", "seed"])["status"].value_counts()
        lines += [
            provenance_line(folder),
            "",
            "Cells: "
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f". Cell wall time: {cost_seconds(frame):.0f} s.",
            "",
        ]
    if suite.notes:
        lines += [suite.notes, ""]
    lines += ["## Claims", "", RULE_SUMMARY, "", claims_table(judged), "", "### Claim by claim", ""]
    for c in judged:
        lines.append(f"- **{c['id']}** ({c['source']}): \"{c['statement']}\" Paper: {c['paper_value_text']}. "
                     f"Ours: {ours(c)} ({c['verdict']}).")  # fmt: skip
        if c["protocol"]:
            lines.append(f"  Protocol differences: {c['protocol']}")
        if c["notes"]:
            lines.append(f"  Notes: {c['notes']}")
        if c.get("paper_audit"):
            lines.append(f"  Audit of the paper's number: {c['paper_audit']}")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    if not frame.empty:
        lines += ["", "## Measurements", "", measurements_table(frame)]
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return judged


def available_profiles(results_dir: Path, suite: str) -> list[str]:
    folder = Path(results_dir) / suite
    return [p for p in PROFILE_ORDER if (folder / p / "runs.csv").exists()]


def rerun_commands(name: str) -> str:
    return "\n".join([
        "```bash",
        f"claimbench run {name} --profile smoke   # seconds: every code path, used by CI",
        f"claimbench run {name} --profile quick   # the main job on a CPU",
        f"claimbench run {name} --profile standard --jobs 2   # every model trained to its rule, CPU",
        f"claimbench run {name} --profile full --device cuda   # the paper's scale",
        "```",
    ])  # fmt: skip


def md(text: Any) -> str:
    """Text safe inside a Markdown table cell (a `|` would end the cell; a newline the row)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def decisive(values: Sequence[float | None], boundaries: Sequence[float | None]) -> list[str]:
    """`values` with as many significant digits as it takes to tell each apart from every boundary
    it differs from (3 at least; 1.75e+11 against a boundary of 1.7525e+11 gets the digits to show it)."""
    finite = [float(b) for b in boundaries if b is not None and math.isfinite(float(b))]
    for digits in range(3, 10):
        shown = [fmt_digits(v, digits) for v in values]
        clash = any(
            v is not None
            and math.isfinite(float(v))
            and float(v) != b
            and fmt_digits(v, digits) == fmt_digits(b, digits)
            for v in values
            for b in finite
        )
        if not clash:
            return shown
    return shown


def fmt_digits(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"  # counts as integers
    return f"{value:.{digits}g}"


def compact_row(c: Mapping[str, Any]) -> list[str]:
    """claim, paper, ours [interval] (n), verdict, evidence: REPRODUCE.md's narrow columns."""
    if c["verdict"] == judging.NOT_RUN:
        ours_text = "not run"
    else:
        bounds = [c.get("claimed_low"), c.get("claimed_high"), c.get("paper_value")]
        effect, low, high = decisive([c["measured"], c["ci_low"], c["ci_high"]], bounds)
        ours_text = effect if c["ci_low"] is None or low == high else f"{effect} [{low}, {high}]"
        ours_text += f" (n={c['n']})"
    return [f"`{c['id']}`", md(c["paper_value_text"]), ours_text, c["verdict"],
            judging.evidence_text(c.get("evidence"))]  # fmt: skip


def narrow_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table without alignment padding: it renders the same, at a fraction of the bytes."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def reproduce_markdown(results_dir: Path) -> str:
    """REPRODUCE.md from the claims.json files (write_suite_report writes them first): per suite one
    narrow table and each experiment's protocol notes once; the full tables are in each report.md."""
    lines = [
        "# REPRODUCE: every claim, the paper's value and ours",
        "",
        "Generated by `claimbench report` (or `nox -s report`) from `results/`; do not edit by hand.",
        "Each suite shows its `standard` profile where it exists, else `quick` (else `smoke`); every",
        "claim's notes, p-values and full protocol are in the suite's report.md.",
        "",
        RULE_SUMMARY,
        "",
    ]
    for name in implemented():
        suite = get_suite(name)
        lines += [f"## {suite.title} (`{name}`)", ""]
        profiles = available_profiles(results_dir, name)
        if not profiles:
            lines += ["No results yet. Run:", "", rerun_commands(name), ""]
            continue
        shown = profiles[0]
        folder = Path(results_dir) / name / shown
        judged = read_claims(folder / "claims.json")
        others = ", ".join(f"[`{p}`](results/{name}/{p}/report.md)" for p in profiles[1:])
        lines += [f"Profile `{shown}` ([full report](results/{name}/{shown}/report.md); also {others or 'none'}). "
                  f"{provenance_line(folder).split(' Packages:')[0]}", ""]  # fmt: skip
        rows = [compact_row(c) for c in judged]
        lines += [narrow_table(["claim", "paper", "ours [decision interval] (n)", "verdict", "evidence"], rows), ""]
        protocols: dict[str, str] = {}
        for c in judged:
            if c.get("protocol"):
                protocols.setdefault(c.get("experiment") or c["family"], c["protocol"])
        if protocols:
            lines += ["Protocol differences, per experiment:", ""]
            lines += [f"- `{experiment}`: {md(text)}" for experiment, text in protocols.items()] + [""]
        lines += ["How to rerun:", "", rerun_commands(name), "",
                  f"Estimated cost of every profile, from steps timed on your machine: `claimbench list {name} --costs`.",
                  ""]  # fmt: skip
    return "\n".join(lines)


def held_back(judged: Sequence[Mapping[str, Any]]) -> int:
    """Claims whose interval would have decided them but whose runs stopped short of their rule."""
    return sum(c["verdict"] == judging.INCONCLUSIVE and "held back:" in (c.get("notes") or "") for c in judged)


def readme_table(results_dir: Path) -> str:
    rows = []
    for name in implemented():
        title = get_suite(name).title
        profiles = available_profiles(results_dir, name)
        if not profiles:
            rows.append([name, title, "-", "no results yet", "-"])
            continue
        for profile in [p for p in profiles if p in ("standard", "quick")] or profiles[:1]:
            judged = read_claims(Path(results_dir) / name / profile / "claims.json")
            tally = {v: sum(c["verdict"] == v for c in judged) for v in judging.VERDICTS}
            summary = ", ".join(f"{n} {v}" for v, n in tally.items() if n)
            rows.append([name, title, profile, summary, held_back(judged)])
    headers = ["suite", "paper", "profile", "claims", "held back (runs short of their stopping rule)"]
    return tabulate(rows, headers=headers, tablefmt="github")


def suites_table() -> str:
    """Every suite the registry finds, with its paper and profiles (README's first table)."""
    rows = []
    for name in implemented():
        suite = get_suite(name)
        rows.append([f"`{name}`", suite.title, ", ".join(suite.profiles)])
    return tabulate(rows, headers=["suite", "paper", "profiles"], tablefmt="github")


def _replace_block(text: str, start: str, end: str, body: str) -> str:
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def readme_text(text: str, results_dir: Path) -> str:
    """README.md with its generated blocks (the suites, the verdicts) rebuilt."""
    text = _replace_block(text, SUITES_START, SUITES_END, suites_table())
    return _replace_block(text, README_START, README_END, readme_table(results_dir))


def update_readme(readme: Path, results_dir: Path) -> None:
    if readme.exists():
        readme.write_text(readme_text(readme.read_text(encoding="utf-8"), results_dir), encoding="utf-8")


def rebuild_all(results_dir: Path) -> list[Path]:
    """Every suite's report for every profile on disk, then REPRODUCE.md and README's table.

    REPRODUCE.md and README.md live in the folder that holds results/ (the repository root).
    """
    root = Path(results_dir).resolve().parent
    written = []
    for name in implemented():
        for profile in available_profiles(results_dir, name):
            write_suite_report(get_suite(name), profile, results_dir)
            written.append(Path(results_dir) / name / profile / "report.md")
    (root / "REPRODUCE.md").write_text(reproduce_markdown(results_dir), encoding="utf-8")
    update_readme(root / "README.md", results_dir)
    return written + [root / "REPRODUCE.md"]

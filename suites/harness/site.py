"""A static site of every claim in results/: an index with filters, a page per suite, a page per claim.

Self-contained so it opens from a file:// URL or a CI artifact with no server and no network: the
CSS and the filter script are inline, figures are copied beside the pages, every link is relative.
Everything the results hold (paper quotes, notes, dataset names) is escaped, so a claim that
quotes `<script>` or `||U^T Wq V||` shows as text. A claim's history comes from git: every commit
that changed its results/<suite>/<profile>/claims.json, keeping the commits in which this claim's
verdict or effect changed.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import statistics
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .forest import compact, forest_plot
from .store import read_claims, read_runs

IMAGES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
CHANGES = ("verdict", "measured", "ci_low", "ci_high")  # what makes a commit part of a claim's history
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:80em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border-bottom:1px solid #ddd;
padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}.num{white-space:nowrap}
.v{font-weight:600;white-space:nowrap}.v-reproduced{color:#1b7837}.v-partially-reproduced{color:#4d9221}
.v-not-reproduced{color:#c51b7d}.v-inconclusive{color:#b35806}.v-measured{color:#4d4d4d}.v-not-run{color:#888}
img{max-width:100%;border:1px solid #eee}nav a{margin-right:1em}dt{font-weight:600}dd{margin:0 0 .6em 1em}
.filters label{margin-right:1em}code{background:#f4f4f4;padding:0 .2em}
"""
FILTER_JS = """
(function () {
  var selects = Array.prototype.slice.call(document.querySelectorAll('select[data-filter]'));
  var rows = Array.prototype.slice.call(document.querySelectorAll('#claims tbody tr'));
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var keep = selects.every(function (s) { return !s.value || row.dataset[s.dataset.filter] === s.value; });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' claims shown';
  }
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  apply();
})();
"""


def e(value: Any) -> str:
    """Escaped text for HTML content and attributes alike."""
    return html.escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    """A file-name-safe form of a claim id or verdict (ids are dotted names; anything else becomes _)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "_"


def interval_text(claim: Mapping[str, Any]) -> str:
    if claim.get("measured") is None:
        return "-"
    if claim.get("ci_low") is None:
        return compact(claim["measured"])
    level = claim.get("ci_level")
    shown = f" ({level:.1%})" if isinstance(level, float) and level < 1 else ""
    return f"{compact(claim['measured'])} [{compact(claim['ci_low'])}, {compact(claim['ci_high'])}]{shown}"


def p_text(p: float | None) -> str:
    """A measurement tests nothing: no p (n/a) rather than a number that looks like a test."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def evidence_kind(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return "none required"
    return "met" if evidence.get("met") == evidence.get("runs") else "short"


def evidence_text(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return "none required"
    short = ", ".join(f"{why} {n}" for why, n in sorted((evidence.get("short") or {}).items()))
    return f"{evidence['required']} {evidence['met']}/{evidence['runs']}" + (f" (short: {short})" if short else "")


@dataclass
class SuiteResults:
    """One results/<suite>/<profile>/ folder as the site shows it."""

    suite: str
    profile: str
    folder: Path
    claims: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    figures: list[str] = field(default_factory=list)  # paths relative to the site root

    @property
    def key(self) -> str:
        return f"{self.suite}--{self.profile}"

    def claim_page(self, claim_id: str) -> str:
        return f"claims/{self.key}--{slug(claim_id)}.html"

    @property
    def suite_page(self) -> str:
        return f"suites/{self.key}.html"


def discover(results_dir: Path) -> list[SuiteResults]:
    found = []
    for path in sorted(Path(results_dir).glob("*/*/claims.json")):
        folder = path.parent
        rows = read_runs(folder / "runs.csv", facts=False)
        found.append(SuiteResults(folder.parent.name, folder.name, folder, read_claims(path), rows))
    return found


# --------------------------------------------------------------------------------------------
# history from git


def _git(repo_root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo_root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:  # no git on this machine: the site is built without history
        return None
    return done.stdout if done.returncode == 0 else None


def _claims_of(text: str | None) -> dict[str, dict[str, Any]]:
    """Claims by id from one version of claims.json; versions before the schema held a bare list."""
    try:
        document = json.loads(text or "")
    except ValueError:
        return {}
    claims = document.get("claims", []) if isinstance(document, dict) else document
    return {c["id"]: c for c in claims if isinstance(c, dict) and "id" in c} if isinstance(claims, list) else {}


def history(repo_root: Path, claims_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Per claim id, newest first: {sha, date, subject, verdict, measured, ci_low, ci_high} for each
    commit in which that claim's verdict or effect changed (its first appearance included)."""
    try:
        relative = claims_path.resolve().relative_to(Path(repo_root).resolve()).as_posix()
    except ValueError:
        return {}  # results outside the repository have no history to read
    log = _git(repo_root, "log", "--format=%H%x09%cs%x09%s", "--", relative)
    if not log:
        return {}
    commits = [line.split("\t", 2) for line in log.splitlines() if line.count("\t") >= 2]
    result: dict[str, list[dict[str, Any]]] = {}
    previous: dict[str, tuple] = {}
    for sha, date, subject in reversed(commits):  # oldest first, so "changed" compares with the one before
        for claim_id, claim in _claims_of(_git(repo_root, "show", f"{sha}:{relative}")).items():
            state = tuple(claim.get(k) for k in CHANGES)
            if previous.get(claim_id) != state:
                entry = {"sha": sha[:12], "date": date, "subject": subject, **dict(zip(CHANGES, state, strict=True))}
                result.setdefault(claim_id, []).insert(0, entry)
            previous[claim_id] = state
    return result


# --------------------------------------------------------------------------------------------
# the runs behind a claim


def _matches(row: Mapping[str, Any], params: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    for key, wanted in (filters or {}).items():
        value = row[key] if key in row else params.get(key)
        options = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        if value not in options and str(value) not in {str(o) for o in options}:
            return False
    return True


def claim_filters(suite: str, claim: Mapping[str, Any]) -> dict[str, Any] | None:
    """experiment/treatment/baseline of a claim: from claims.json when it holds them, else from the
    suite's registered Claim; None when neither is available (the runs are then chosen by metric)."""
    if "experiment" in claim:
        return {k: claim.get(k) for k in ("experiment", "treatment", "baseline")}
    try:
        from .registry import entries, get_suite

        if suite not in entries():
            return None
        found = get_suite(suite).claim(claim["id"])
    except Exception:  # noqa: BLE001 - a suite that cannot load here still gets its site
        return None
    return {"experiment": found.experiment, "treatment": found.treatment, "baseline": found.baseline}


def runs_summary(rows: Sequence[Mapping[str, Any]], claim: Mapping[str, Any], filters: Mapping | None) -> list[list]:
    """[role, experiment, task, method, params, cells, status counts, mean, sd, min, max, note] per group
    of the claim's metric."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["metric"] != claim.get("metric"):
            continue
        params = json.loads(row["params"])
        if filters and filters.get("experiment") not in (None, row["experiment"]):
            continue
        role = ""
        if filters:
            sides = (("treatment", filters.get("treatment")), ("baseline", filters.get("baseline")))
            role = next((name for name, f in sides if f is not None and _matches(row, params, f)), "")
            if not role:
                continue
        groups.setdefault((role, row["experiment"], row["task"], row["method"], row["params"]), []).append(row)
    table = []
    for key, members in groups.items():
        values = [r["value"] for r in members if r["status"] in ("ok", "diverged") and math.isfinite(r["value"])]
        statuses = ", ".join(f"{s} {sum(r['status'] == s for r in members)}"
                             for s in sorted({r["status"] for r in members}))  # fmt: skip
        notes = sorted({r["note"] for r in members if r["note"]})
        spread = [compact(statistics.mean(values)), compact(statistics.stdev(values)) if len(values) > 1 else "-",
                  compact(min(values)), compact(max(values))] if values else ["-"] * 4  # fmt: skip
        table.append([*key, len(members), statuses, *spread, "; ".join(notes[:2])])
    return table


# --------------------------------------------------------------------------------------------
# pages


def page(title: str, body: str, depth: int, script: str = "") -> str:
    up = "../" * depth
    nav = f'<nav><a href="{up}index.html">all claims</a></nav>'
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{nav}<h1>{e(title)}</h1>\n{body}\n{js}</body></html>\n")  # fmt: skip


def table(headers: Iterable[str], rows: Sequence[Iterable[str]], table_id: str = "",
          row_attributes: Sequence[str] | None = None) -> str:  # fmt: skip
    """`rows` hold HTML already escaped (cells may carry links), so nothing is escaped here twice;
    `row_attributes` are the escaped attributes of each <tr> (the index's filters read them)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    attributes = row_attributes or [""] * len(rows)
    body = "\n".join(f"<tr{' ' + a if a else ''}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                     for row, a in zip(rows, attributes, strict=True))  # fmt: skip
    ident = f' id="{e(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def verdict_html(verdict: str) -> str:
    return f'<span class="v v-{slug(verdict.replace(" ", "-"))}">{e(verdict)}</span>'


def link(href: str, text: str, up: str = "") -> str:
    return f'<a href="{e(up + quote(href))}">{e(text)}</a>'


def figures_html(figures: Sequence[str], up: str) -> str:
    parts = []
    for path in figures:
        name = path.rsplit("/", 1)[-1]
        if path.lower().endswith(IMAGES):
            parts.append(f'<figure><img src="{e(up + quote(path))}" alt="{e(name)}"><figcaption>{e(name)}'
                         "</figcaption></figure>")  # fmt: skip
        else:
            parts.append(f"<p>{link(path, name, up)}</p>")
    return "\n".join(parts) or "<p>No figures.</p>"


def index_page(results: Sequence[SuiteResults]) -> str:
    rows, options = [], {"suite": set(), "profile": set(), "verdict": set(), "evidence": set()}
    filter_rows = []
    for r in results:
        for c in r.claims:
            values = {"suite": r.suite, "profile": r.profile, "verdict": c["verdict"],
                      "evidence": evidence_kind(c.get("evidence"))}  # fmt: skip
            for k, v in values.items():
                options[k].add(v)
            filter_rows.append(" ".join(f'data-{k}="{e(v)}"' for k, v in values.items()))
            rows.append([link(r.suite_page, r.suite), e(r.profile), link(r.claim_page(c["id"]), c["id"]),
                         e(c.get("paper_value_text")), f'<span class="num">{e(interval_text(c))}</span>',
                         verdict_html(c["verdict"]), e(evidence_text(c.get("evidence")))])  # fmt: skip
    selects = " ".join(
        f'<label>{e(k)} <select data-filter="{e(k)}"><option value="">all</option>'
        + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in sorted(vs))
        + "</select></label>"
        for k, vs in options.items()
    )
    headers = ["suite", "profile", "claim", "paper", "ours: effect [decision interval]", "verdict", "evidence"]
    html_table = table(headers, rows, "claims", filter_rows)
    suites = " ".join(link(r.suite_page, f"{r.suite} ({r.profile})") for r in results)
    body = (f"<p>Every claim found in results/. Suites: {suites}</p>"
            f'<div class="filters">{selects} <span id="shown"></span></div>{html_table}')  # fmt: skip
    return page("claimbench: every claim", body, 0, FILTER_JS)


def suite_page(r: SuiteResults) -> str:
    tally: dict[str, int] = {}
    for c in r.claims:
        tally[c["verdict"]] = tally.get(c["verdict"], 0) + 1
    counts = ", ".join(f"{n} {v}" for v, n in tally.items())
    rows = [[link(r.claim_page(c["id"]), c["id"], "../"), e(c.get("paper_value_text")), e(interval_text(c)),
             e(c.get("claimed_region") or "-"), verdict_html(c["verdict"]), e(evidence_text(c.get("evidence")))]
            for c in r.claims]  # fmt: skip
    cells = {(row["experiment"], row["task"], row["method"], row["params"], row["seed"]): row["status"]
             for row in r.rows}  # fmt: skip
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(_count(cells.values()).items())) or "none"
    body = (f"<p>{len(r.claims)} claims: {e(counts)}. Cells in runs.csv: {e(statuses)}.</p>"
            + table(["claim", "paper", "ours", "claimed region", "verdict", "evidence"], rows)
            + "<h2>Figures</h2>" + figures_html(r.figures, "../"))  # fmt: skip
    return page(f"{r.suite}, profile {r.profile}", body, 1)


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def claim_page(r: SuiteResults, c: Mapping[str, Any], past: Sequence[Mapping[str, Any]]) -> str:
    facts = [("statement (the paper's words)", c.get("statement")), ("source", c.get("source")),
             ("paper's value", c.get("paper_value_text")), ("claimed region", c.get("claimed_region") or "none"),
             ("null side", c.get("null_region") or "none"), ("ours: effect [decision interval]", interval_text(c)),
             ("test", c.get("test")), ("p raw / Holm in family", f"{p_text(c.get('p_raw'))} / {p_text(c.get('p_value'))}"),
             ("n (independent units)", f"{c.get('n')} ({c.get('unit')})"),
             ("evidence", evidence_text(c.get("evidence"))), ("protocol differences", c.get("protocol") or "none"),
             ("notes", c.get("notes") or "none")]  # fmt: skip
    facts_html = "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>"
    filters = claim_filters(r.suite, c)
    chosen = ("rows of the claim's experiment, treatment and baseline" if filters
              else "rows of the claim's metric (its experiment and sides are not in claims.json)")  # fmt: skip
    runs = [[e(v) for v in row] for row in runs_summary(r.rows, c, filters)]
    runs_headers = ["role", "experiment", "task", "method", "params", "cells", "status", "mean", "sd", "min", "max",
                    "notes"]  # fmt: skip
    if past and tuple(c.get(k) for k in CHANGES) != tuple(past[0][k] for k in CHANGES):
        past = [{"sha": "working tree", "date": "", "subject": "not committed yet", **{k: c.get(k) for k in CHANGES}},
                *past]  # fmt: skip
    past_rows = [[f"<code>{e(h['sha'])}</code>", e(h["date"]), e(h["subject"]), verdict_html(h["verdict"] or "?"),
                  e(interval_text({**h, "ci_level": None}))] for h in past]  # fmt: skip
    body = (f"<p>{verdict_html(c['verdict'])} in {link(r.suite_page, f'{r.suite} ({r.profile})', '../')}</p>"
            + facts_html + f"<h2>Runs behind it</h2><p>From runs.csv: {e(chosen)}.</p>"
            + (table(runs_headers, runs) if runs else "<p>No rows.</p>")
            + "<h2>History</h2><p>Commits that changed this claim's verdict or effect, newest first.</p>"
            + (table(["commit", "date", "subject", "verdict", "effect [interval]"], past_rows) if past_rows
               else "<p>No history in git for this file.</p>")
            + "<h2>Figures</h2>" + figures_html(r.figures, "../"))  # fmt: skip
    return page(c["id"], body, 1)


def _copy_figures(r: SuiteResults, out: Path) -> None:
    """Copy the folder's figures beside the pages; draw the forest plot if the report has not."""
    target = out / "figures" / r.suite / r.profile
    source = r.folder / "figures"
    names = sorted(p.name for p in source.iterdir() if p.is_file()) if source.is_dir() else []
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, target / name)
    if "forest.png" not in names:
        forest_plot(r.claims, target / "forest.png", f"{r.suite} ({r.profile}): every claim against the paper")
        names.insert(0, "forest.png")
    else:
        names.insert(0, names.pop(names.index("forest.png")))
    r.figures = [f"figures/{r.suite}/{r.profile}/{name}" for name in names]


def build_site(results_dir: Path, out: Path, repo_root: Path) -> Path:
    """Write the site for every results/<suite>/<profile>/claims.json under `results_dir` into `out`
    (replacing what an earlier build left there); return the index page."""
    results = discover(Path(results_dir))
    out = Path(out)
    for stale in ("index.html", "claims", "suites", "figures"):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (out / "claims").mkdir(parents=True)
    (out / "suites").mkdir()
    for r in results:
        _copy_figures(r, out)
        past = history(Path(repo_root), r.folder / "claims.json")
        (out / r.suite_page).write_text(suite_page(r), encoding="utf-8")
        for c in r.claims:
            (out / r.claim_page(c["id"])).write_text(claim_page(r, c, past.get(c["id"], [])), encoding="utf-8")
    index = out / "index.html"
    index.write_text(index_page(results), encoding="utf-8")
    return index

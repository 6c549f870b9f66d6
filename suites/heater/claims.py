"""The Heater paper's claims as data, in families (one family per claim of the paper).

Every comparison is on the TEST users of one task, paired user by user (unit = task x user; the
per-user arrays of all methods of a task line up); the intervals are adjusted within the family.
The test is the paired t on per-user differences: its interval is that of the difference in MEAN
Recall/NDCG, the quantity the paper reports, and with hundreds to thousands of users the mean is
close to normal. The issue asked for a paired Wilcoxon; its Hodges-Lehmann interval collapses to
[0, 0] here, because most users get the same Recall@20 from both methods (mostly zero hits), so it
cannot say how large an effect is (a first quick run showed it: CiteULike effects "0 [0, 0]").
Paper values are the paper's own effects (Tables 2-3, Figure 7): LastFM compares directly (same split, same content); CiteULike uses item TAGS where the
paper used item text, so it compares in direction and size only; MovieLens-100K is not in the paper.

Families: `beats` (Heater against every Table 2 baseline the suite runs, KNN included, per dataset
and metric, Holm over all of them), `rt`/`moe`/`guide` (Table 3's ablations), `p_robust`/`experts`/
`alpha` (Figure 7's sweeps, experiment `sensitivity`, on CiteULike), `level_paper` (Heater's LastFM
Recall@20 against the paper's .1451, over seeds), and the measurements `level` and `content`.
Every claim needs converged runs (`evidence="converged"`): see training.py for the rules.
"""

from __future__ import annotations

from suites.harness.core import Claim, family

TASKS = ("lastfm", "citeulike", "movielens-item", "movielens-user")
TAG_NOTE = "here CiteULike content = item tags, the paper's = item text"
NO_PAPER = "not in the paper (MovieLens-100K)"

# Table 2 and Table 3 of the paper: (Recall@20, NDCG@20).
PAPER = {
    "lastfm": {"heater": (0.1451, 0.3705), "dropoutnet": (0.1351, 0.3439), "linmap": (0.1152, 0.2880),
               "knn": (0.1354, 0.3537),
               "heater_alpha0": (0.0944, 0.2387), "heater_k1": (0.1431, 0.3689), "heater_p0": (0.1415, 0.3532)},
    "citeulike": {"heater": (0.3727, 0.3731), "dropoutnet": (0.3275, 0.3089), "linmap": (0.2351, 0.2150),
                  "knn": (0.2192, 0.1500),
                  "heater_alpha0": (0.3273, 0.3437), "heater_k1": (0.3406, 0.3382), "heater_p0": (0.3654, 0.3672)},
}  # fmt: skip
# Table 2's baselines the suite runs (CMF, LoCo, NLinMap, LWA and LLAE are not implemented here).
BASELINES = ("dropoutnet", "linmap", "knn")
# Figure 7 on CiteULike, NDCG@20 read off the plots (about +-0.001): p, number of experts, alpha.
PAPER_P_NDCG = {0.1: 0.366, 0.3: 0.370, 0.5: 0.373, 0.7: 0.375, 0.9: 0.379}
PAPER_K_NDCG = {1: 0.338, 5: 0.373, 10: 0.342}
PAPER_ALPHA_NDCG = {1e-4: 0.373, 1e-3: 0.360}
P_SWEEP = (0.1, 0.9)  # the points standard runs (profiles.FIG7)
P_MARGIN = 0.01  # NDCG@20 a p may lose against p = 0.5 and still count as "robust"
# Heater's LastFM Recall@20 as a level: the paper's .1451 within +-0.005, the smallest lead Heater
# had over a baseline in the paper's LastFM column (.1451 vs LLAE .1403), fixed before any standard
# run: a level outside it would change how Table 2 reads.
LEVEL_TOLERANCE = 0.005

PROTOCOL = {
    "lastfm": "user cold start: cold test users ranked against all warm items (the paper's split)",
    "citeulike": "item cold start: test users ranked against the cold test items (the paper's split)",
    "movielens-item": "item cold start: a seeded quarter of the items held out cold",
    "movielens-user": "user cold start: a seeded 40% of the users held out cold",
}
METRIC_INDEX = {"recall@20": 0, "ndcg@20": 1}


def _paper(task: str, method: str, metric: str) -> dict:
    """paper_value (the paper's difference Heater - method) and its text."""
    if task not in PAPER:
        return {"paper_value": None, "paper_value_text": NO_PAPER}
    i = METRIC_INDEX[metric]
    ours, theirs = PAPER[task]["heater"][i], PAPER[task][method][i]
    text = f"{ours:.4f} vs {theirs:.4f} ({ours - theirs:+.4f})"
    if task == "citeulike":
        text += f"; {TAG_NOTE}"
    return {"paper_value": round(ours - theirs, 4), "paper_value_text": text}


def _pair(base: Claim, task: str, method: str, metric: str, name: str) -> dict:
    return dict(
        id=f"{base.family_name}.{name}",
        metric=metric,
        treatment={"method": "heater", "task": task},
        baseline={"method": method, "task": task},
        protocol=PROTOCOL[task],
        **_paper(task, method, metric),
    )


def _direction(id_: str, statement: str, source: str, experiment: str = "coldstart") -> Claim:
    return Claim(
        id=id_, statement=statement, source=source, experiment=experiment, metric="recall@20",
        treatment={"method": "heater"}, test="ttest", direction="greater", margin=0.0,
        unit=("task", "element"),
    )  # fmt: skip


# One family: every Table 2 baseline the suite runs, per dataset and metric (Holm across all of them).
_BEATS = _direction(
    "heater.beats.base",
    "Heater beats every baseline of Table 2 (DropoutNet, LinMap, KNN) on cold-start Recall@20 and NDCG@20",
    "Table 2",
)
BEATS = family(
    _BEATS,
    [
        _pair(_BEATS, task, method, metric, f"{task}.{method}.{metric.replace('@', '')}")
        for task in TASKS
        for method in BASELINES
        for metric in ("recall@20", "ndcg@20")
    ],
)

_RT = _direction("heater.rt.base", "Randomized training helps: Heater (p = 0.5) beats Heater with p = 0", "Table 3")
RT = family(_RT, [_pair(_RT, task, "heater_p0", "recall@20", task) for task in TASKS])

_MOE = _direction("heater.moe.base", "The mixture of experts helps: K = 5 experts beat K = 1", "Table 3")
MOE = family(_MOE, [_pair(_MOE, task, "heater_k1", "recall@20", task) for task in TASKS])

_GUIDE = _direction(
    "heater.guide.base", "The guide term (joint + separate training) helps: alpha = 1e-4 beats alpha = 0", "Table 3"
)
GUIDE = family(_GUIDE, [_pair(_GUIDE, task, "heater_alpha0", "recall@20", task) for task in TASKS])


def _sweep_member(family_name: str, method: str, diff: float, heater_first: bool = True) -> dict:
    text = f"{diff:+.3f} (Figure 7, read off the plot); {TAG_NOTE}"
    return dict(
        id=f"{family_name}.citeulike.{method.removeprefix('heater_')}",
        treatment={"method": "heater", "task": "citeulike"}
        if heater_first
        else {"method": method, "task": "citeulike"},
        baseline={"method": method, "task": "citeulike"} if heater_first else {"method": "heater", "task": "citeulike"},
        paper_value=round(diff, 3),
        paper_value_text=text,
        protocol=PROTOCOL["citeulike"],
    )


_P = Claim(
    id="heater.p_robust.base",
    statement=f"Heater is robust to p: every p in {P_SWEEP} is within {P_MARGIN} NDCG@20 of p = 0.5",
    source="Figure 7",
    experiment="sensitivity",
    metric="ndcg@20",
    treatment={"method": "heater_p0.1"},
    baseline={"method": "heater"},
    test="ttest",
    direction="noninferior",
    margin=P_MARGIN,
    unit=("task", "element"),
)
P_ROBUST = family(
    _P,
    [_sweep_member("heater.p_robust", f"heater_p{p:g}", PAPER_P_NDCG[p] - PAPER_P_NDCG[0.5], False) for p in P_SWEEP],
)

_EXPERTS = _direction("heater.experts.base", "About 5 experts is best: K = 5 beats K = 10", "Figure 7", "sensitivity")
EXPERTS = family(
    _EXPERTS.variant(metric="ndcg@20"),
    [_sweep_member("heater.experts", "heater_k10", PAPER_K_NDCG[5] - PAPER_K_NDCG[10])],
)

_ALPHA = _direction(
    "heater.alpha.base", "Too large a guide weight hurts: alpha = 1e-4 beats alpha = 1e-3", "Figure 7", "sensitivity"
)
ALPHA = family(
    _ALPHA.variant(metric="ndcg@20"),
    [_sweep_member("heater.alpha", "heater_alpha0.001", PAPER_ALPHA_NDCG[1e-4] - PAPER_ALPHA_NDCG[1e-3])],
)

# Heater's LastFM Recall@20 against the paper's, on the paper's own split, content and protocol.
LEVEL_PAPER = (
    Claim(
        id="heater.level_paper.lastfm",
        statement=f"Heater's LastFM Recall@20 is the paper's .1451 (within +-{LEVEL_TOLERANCE})",
        source="Table 2",
        experiment="coldstart",
        metric="recall@20",
        treatment={"method": "heater", "task": "lastfm"},
        test="ttest",
        direction="match",
        margin=LEVEL_TOLERANCE,
        unit=("task", "seed"),
        paper_value=PAPER["lastfm"]["heater"][0],
        paper_value_text=f"{PAPER['lastfm']['heater'][0]:.4f} +- {LEVEL_TOLERANCE} (tolerance: see claims.py)",
        protocol=PROTOCOL["lastfm"],
    ),
)

# Not a claim of the paper: Heater's own Recall@20 per task, over training runs (seeds), beside the
# paper's Table 2 value, so the absolute level and the spread over seeds are in the report.
_LEVEL = Claim(
    id="heater.level.base",
    statement="Heater's cold-start Recall@20 (mean over test users), spread over training runs",
    source="Table 2",
    experiment="coldstart",
    metric="recall@20",
    treatment={"method": "heater"},
    direction="measurement",
    unit=("task", "seed"),
)
LEVEL = family(
    _LEVEL,
    [
        dict(
            id=f"heater.level.{task}",
            treatment={"method": "heater", "task": task},
            paper_value=PAPER[task]["heater"][0] if task in PAPER else None,
            paper_value_text=(f"{PAPER[task]['heater'][0]:.4f}" + (f"; {TAG_NOTE}" if task == "citeulike" else ""))
            if task in PAPER
            else NO_PAPER,
            protocol=PROTOCOL[task],
        )
        for task in TASKS
    ],
)

# Not a claim of the paper: the content-only KNN's Recall@20 beside the paper's KNN, so the report
# shows what the content itself is worth here. On CiteULike the paper's KNN read item TEXT and ours
# reads item TAGS: if ours matches or beats .2192, tags are no weaker a content signal than the
# paper's text, and a Heater gap on CiteULike cannot be put down to the content.
KNN_LEVEL = family(
    _LEVEL.variant(id="heater.content.base", statement="Content-only KNN's Recall@20 (what the content is worth)"),
    [
        dict(
            id=f"heater.content.{task}",
            treatment={"method": "knn", "task": task},
            paper_value=PAPER[task]["knn"][0],
            paper_value_text=f"{PAPER[task]['knn'][0]:.4f} (the paper's KNN"
            + ("; on item text, ours on item tags)" if task == "citeulike" else ")"),
            protocol=PROTOCOL[task],
        )
        for task in ("lastfm", "citeulike")
    ],
)

# Every claim here is about trained models: its verdict stands only on runs that met their stopping
# rules (the model's and the BPR pretraining's, see training.py); short runs hold it back.
CLAIMS = tuple(
    c.variant(evidence="converged")
    for c in (*BEATS, *RT, *MOE, *GUIDE, *P_ROBUST, *EXPERTS, *ALPHA, *LEVEL_PAPER, *LEVEL, *KNN_LEVEL)
)

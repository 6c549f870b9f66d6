"""The depth pilot of the warmup-free comparison (issue 24, item 3): at which depth does this model
size show PostNorm failing without warmup while PreNorm trains?

Runs PostNorm and PreNorm without warmup (the suite's own run_nowarmup: constant `nowarmup_lr` from
the first update, the same stopping rule, the failure criterion of claims.FAIL_VAL_LOSS) at each
depth, and prints each run's outcome. Its result decides the profile's `nowarmup_deep` (and
`nowarmup_shallow`) before the profile's run; it is a pilot, so its rows are not results.

    python -m suites.norm.pilot --profile standard --depths 2 3 4 5 6 --seeds 1
    python -m suites.norm.pilot --profile smoke --depths 1 2 --seeds 1   # proves it runs (seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from suites.harness import Diverged, Experiment
from suites.harness.core import RunContext
from suites.harness.training import stop_reason_name
from suites.norm.experiments import NOWARMUP, TASKS, run_nowarmup
from suites.norm.profiles import PROFILES


def pilot(profile: str, depths: list[int], seeds: int, steps: int | None, data_dir: str | None) -> list[dict]:
    settings = PROFILES[profile]
    if steps is not None:
        settings = dataclasses.replace(settings, nowarmup_steps=steps)
    exp = Experiment(
        name="nowarmup_pilot",
        run=run_nowarmup,
        tasks={f"depth{d}": {**TASKS["de-en"], "depth": d} for d in depths},
        methods=NOWARMUP,
        seeds=seeds,
    )
    ctx = RunContext(profile=profile, settings=settings, data_dir=data_dir, threads=settings.threads)
    rows = []
    for cell in exp.cells("norm", 0):
        start = time.perf_counter()
        try:
            m = run_nowarmup(cell, ctx)
            row = dict(
                failed=m["failed"],
                val_loss=m["val_loss"],
                bleu=m["bleu"],
                stop=stop_reason_name(m["stop_reason"]),
                updates=int(m["train_steps"]) * settings.eval_every,
            )
        except Diverged as exc:
            row = dict(failed=1.0, val_loss=float("nan"), bleu=0.0, stop="diverged", updates=exc.metrics.get("step"))
        row.update(depth=cell.task_kwargs["depth"], method=cell.method, seed=cell.seed,
                   seconds=round(time.perf_counter() - start, 1))  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="override the profile's nowarmup_steps cap")
    parser.add_argument("--data-dir", default=os.environ.get("CLAIMBENCH_DATA"))
    args = parser.parse_args(argv)
    rows = pilot(args.profile, args.depths, args.seeds, args.steps, args.data_dir)
    print("\ndepth  method   failed/runs  mean best val loss")
    for depth in args.depths:
        for method in NOWARMUP:
            mine = [r for r in rows if r["depth"] == depth and r["method"] == method]
            losses = [r["val_loss"] for r in mine]
            print(f"{depth:5d}  {method:7s}  {sum(r['failed'] for r in mine):.0f}/{len(mine)}  "
                  f"{sum(losses) / len(losses):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Run functions of the norm suite: train a translation model to its stopping rule.

Stopping rule (one rule for every method, suites.harness.training.EarlyStopping): the validation
NLL per token (unsmoothed, on `val_limit` validation pairs) is computed every `eval_every` updates;
training stops once it has gone `patience` evaluations without improving by more than `min_delta`
(`converged`), or at the safety cap of `steps` updates (`cap`: the run was still improving); a
warmup-free run also stops once its pass/fail outcome is decided (see `train`). The
model reported is the best by validation loss (the paper selects by dev BLEU; loss is cheaper and
is what the rule watches). Decoding is greedy (the paper uses beam search; `Seq2Seq.beam` exists
but decodes one sentence at a time, too slow for this CPU's budget), and BLEU is sacrebleu's
corpus BLEU of detokenised text against the raw references.
"""

from __future__ import annotations

import copy
import math
import random
import time

import numpy as np
import torch

from impl.seq2seq import PlateauDecay, Seq2Seq, Seq2SeqConfig, inv_sqrt_lr
from suites.data.translation import BOS, EOS, PAD, UNK, collate, multi30k, token_batches
from suites.harness import Diverged, Experiment
from suites.harness.core import StepCost
from suites.harness.training import EarlyStopping, TrainingRecord
from suites.norm.claims import FAIL_VAL_LOSS
from suites.norm.timing import run_throughput, step_seconds

# The four setups of the paper's Table 3, plus the two stacks compared without warmup.
TABLE3 = {
    "post_ln": dict(prenorm=False, norm="layer", fixnorm=False),
    "pre_ln": dict(prenorm=True, norm="layer", fixnorm=False),
    "pre_fix_ln": dict(prenorm=True, norm="layer", fixnorm=True),
    "pre_fix_sn": dict(prenorm=True, norm="scale", fixnorm=True),
}
NOWARMUP = {"post_ln": TABLE3["post_ln"], "pre_ln": TABLE3["pre_ln"]}
TASKS = {"de-en": dict(src="de", tgt="en")}


def load_data(s, task, data_dir):
    return multi30k(s.vocab_size, task["src"], task["tgt"], data_dir, s.n_train)


def load(ctx, task):
    return load_data(ctx.settings, task, ctx.data_dir)


def make_config(s, vocab_size: int, method, layers: int, init: str) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        vocab_size=vocab_size, d_model=s.d_model, n_heads=s.n_heads, d_ff=s.d_ff, enc_layers=layers,
        dec_layers=layers, dropout=s.dropout, word_dropout=s.word_dropout, init=init, pad_id=0, unk_id=1,
        max_len=256, **method,
    )  # fmt: skip


def make_model(s, data, method, layers: int, init: str) -> Seq2Seq:
    tok = data.tokenizer
    assert tok.token_to_id(PAD) == 0 and tok.token_to_id(UNK) == 1
    return Seq2Seq(make_config(s, data.vocab_size, method, layers, init))


@torch.no_grad()
def mean_loss(model, examples, device, max_tokens, label_smoothing) -> float:
    """Loss per target token over `examples` (label-smoothed if asked)."""
    model.eval()
    total, count = 0.0, 0
    for idx in token_batches(examples, max_tokens, max_len=250):
        src, tgt_in, tgt_out = (t.to(device) for t in collate(examples, idx))
        n = int((tgt_out != 0).sum())
        total += float(model.loss(model(src, tgt_in), tgt_out, label_smoothing)) * n
        count += n
    model.train()
    return total / count


@torch.no_grad()
def translate(model, data, split, device, limit, batch_size=200) -> list[str]:
    model.eval()
    bos, eos = data.tokenizer.token_to_id(BOS), data.tokenizer.token_to_id(EOS)
    examples = data.ids[split][:limit]
    hyps = []
    for start in range(0, len(examples), batch_size):
        chunk = list(range(start, min(start + batch_size, len(examples))))
        src, _, _ = collate(examples, chunk)
        out = model.greedy(src.to(device), bos, eos, max_len=src.shape[1] + 10)
        for row in out.tolist():
            row = row[: row.index(eos)] if eos in row else row
            hyps.append(data.decode(row))
    model.train()
    return hyps


def bleu(hyps: list[str], refs: list[str]) -> float:
    """sacrebleu corpus BLEU (its defaults: 13a tokenisation of detokenised text, as a user scores it)."""
    from sacrebleu.metrics import BLEU

    return BLEU().corpus_score(hyps, [refs]).score


def grad_stats(norms: list[float]) -> dict[str, float]:
    """Mean, coefficient of variation and spikes of the global gradient norm, after the first 10% of
    updates (the first steps of every model have large gradients). A spike is an update whose
    norm exceeds twice the median of the run's norms."""
    g = np.asarray(norms[len(norms) // 10 :], dtype=float)
    med = float(np.median(g))
    return {
        "grad_norm_mean": float(g.mean()),
        "grad_norm_cv": float(g.std() / g.mean()),
        "grad_norm_spikes": float((g > 2 * med).sum()),
    }


def update(model, opt, batch, label_smoothing: float, clip: float) -> tuple[float, float]:
    """One training update (forward, backward, clipping, Adam): the step every run and every timing
    uses. Returns the loss and the global gradient norm before clipping."""
    loss = model.loss(model(*batch[:2]), batch[2], label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
    opt.step()
    return loss.item(), gnorm


def learning_rate(schedule: str, step: int, s) -> float | None:
    """The learning rate of update `step` under InvSqrtDecay ("warmup"), scaled so its peak (at
    `warmup`) is `peak_lr`; None under NoWarmup, whose rate PlateauDecay sets (constant from update 1)."""
    if schedule == "nowarmup":
        return None
    return inv_sqrt_lr(step, s.d_model, s.warmup, s.peak_lr * math.sqrt(s.d_model) * math.sqrt(s.warmup))


def train(cell, ctx, method, layers, schedule, init, steps, decided_below: float | None = None):
    """Train one model to the stopping rule (capped at `steps` updates); returns metrics, hypotheses.

    `decided_below` (the warmup-free runs, whose claim is pass/fail): the rule also stops a run once
    its validation NLL is at or below this value, since the run's best can only fall further and the
    outcome "trained" can no longer change; the record then says `converged`, and
    `stopped_decided` = 1 tells it from patience. The same rule for both methods compared."""
    s, device = ctx.settings, ctx.device
    data = load(ctx, cell.task_kwargs)
    torch.manual_seed(cell.seed)
    model = make_model(s, data, method, layers, init).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.0, betas=(0.9, 0.999), eps=1e-8)
    plateau = PlateauDecay(opt, s.nowarmup_lr) if schedule == "nowarmup" else None
    train_ex, val_ex = data.ids["train"], data.ids["val"][: s.val_limit]
    batches = token_batches(train_ex, s.max_tokens)
    rng = random.Random(cell.seed)
    stopper = EarlyStopping(s.patience, s.min_delta, "min", cap=math.ceil(steps / s.eval_every))
    order: list[int] = []
    losses, gnorms, curve, lrs = [], [], [], []
    train_seconds, reached, best, decided = 0.0, None, None, False
    for step in range(1, stopper.cap * s.eval_every + 1):
        if not order:
            order = list(range(len(batches)))
            rng.shuffle(order)
        batch = tuple(t.to(device) for t in collate(train_ex, batches[order.pop()]))
        lr = learning_rate(schedule, step, s)
        for group in opt.param_groups:
            group["lr"] = group["lr"] if lr is None else lr
        lrs.append(opt.param_groups[0]["lr"])
        start = time.perf_counter()
        loss_value, gnorm = update(model, opt, batch, s.label_smoothing, s.clip)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - start
        if not (math.isfinite(loss_value) and math.isfinite(gnorm)):
            raise Diverged(f"training loss became {loss_value} at update {step}", {"failed": 1.0, "step": step})
        losses.append(loss_value)
        gnorms.append(gnorm)
        if step % s.eval_every:
            continue
        val = mean_loss(model, val_ex, device, s.max_tokens, 0.0)
        if not math.isfinite(val):
            raise Diverged(f"validation loss became {val} at update {step}", {"failed": 1.0, "step": step})
        curve.append((step, val))
        if plateau is not None:
            plateau.step_validation(val)
        if reached is None and val <= s.target_val_loss:
            reached = (step, train_seconds)
        stop = stopper.update(val)
        if stopper.improved:  # the model the rule reports: the best by validation loss
            best = copy.deepcopy(model.state_dict())
        decided = decided_below is not None and val <= decided_below
        if stop or decided:
            break
    record = stopper.record()
    if decided:
        record = TrainingRecord("converged", record.train_steps, record.best_step, record.last_improvement)
    model.load_state_dict(best)
    refs = [p[1] for p in data.pairs["test"][: s.test_limit]]
    hyps = translate(model, data, "test", device, s.test_limit)
    # Not reached: censored one evaluation past the last update (the run then falls short of `target`).
    steps_to, secs_to = reached if reached else (step + s.eval_every, train_seconds * (1 + s.eval_every / step))
    metrics = {
        "bleu": bleu(hyps, refs),
        "val_loss": stopper.best,
        "test_ppl_ls": math.exp(mean_loss(model, data.ids["test"], device, s.max_tokens, s.label_smoothing)),
        "reached_target": float(reached is not None),
        "steps_to_target": float(steps_to),
        "seconds_to_target": float(secs_to),
        "train_seconds": train_seconds,
        "first_lr": lrs[0],  # 0 < first_lr << peak_lr under warmup; nowarmup_lr without (tested)
        "max_lr": max(lrs),
        "final_train_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
        **record.metrics(),
        "stopped_decided": float(decided),
        **grad_stats(gnorms),
        "_grad_norms": gnorms,
    }
    for at, val in curve:
        metrics[f"val_loss@{at}"] = val
    return metrics, hyps


def encode_text(lines: list[str]) -> np.ndarray:
    """Sentences as one uint8 array (UTF-8, newline-separated): the store keeps numeric arrays only."""
    return np.frombuffer("\n".join(lines).encode("utf-8"), dtype=np.uint8).copy()


def decode_text(array: np.ndarray) -> list[str]:
    return bytes(np.asarray(array, dtype=np.uint8)).decode("utf-8").split("\n")


def run_table3(cell, ctx):
    s = ctx.settings
    metrics, hyps = train(cell, ctx, cell.method_kwargs, s.layers, "warmup", s.init, s.steps)
    # the detokenised test translations: figures.bootstrap_table runs sacrebleu's paired bootstrap on them
    metrics["test_hyps_utf8"] = encode_text(hyps)
    metrics["grad_norm_trace"] = np.asarray(metrics.pop("_grad_norms"))  # per update, for the figure
    return metrics


def run_nowarmup(cell, ctx):
    """A warmup-free run. It fails when it diverges or its best validation loss stays above
    claims.FAIL_VAL_LOSS (declared in the claim before any run)."""
    s = ctx.settings
    try:
        depth = cell.task_kwargs["depth"]
        metrics, _ = train(
            cell, ctx, cell.method_kwargs, depth, "nowarmup", s.nowarmup_init, s.nowarmup_steps, FAIL_VAL_LOSS
        )
    except Diverged as exc:
        exc.metrics.setdefault("bleu", 0.0)
        raise
    metrics["failed"] = float(metrics["val_loss"] > FAIL_VAL_LOSS)
    metrics.pop("_grad_norms")
    drop = [k for k in metrics if k.startswith("val_loss@")] + [
        "reached_target",
        "steps_to_target",
        "seconds_to_target",
    ]
    return {k: v for k, v in metrics.items() if k not in drop}


def build(s):
    return [
        Experiment(name="table3", run=run_table3, tasks=TASKS, methods=TABLE3, seeds=s.seeds,
                   cost=StepCost(steps=s.steps, time_step=step_seconds)),
        Experiment(
            name="nowarmup",
            run=run_nowarmup,
            methods=NOWARMUP,
            seeds=s.nowarmup_seeds,
            tasks={
                "shallow": {**TASKS["de-en"], "depth": s.nowarmup_shallow},
                "deep": {**TASKS["de-en"], "depth": s.nowarmup_deep},
            },
            cost=StepCost(steps=s.nowarmup_steps, time_step=step_seconds),
        ),
        Experiment(
            name="throughput",
            run=run_throughput,
            tasks={"norm_layer": {}, "train_step": {}},
            methods={"scale_vs_layer": {}},
            seeds=s.timing_blocks,
            exclusive=True,
        ),
    ]  # fmt: skip

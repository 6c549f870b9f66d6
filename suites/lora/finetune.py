"""Fine-tuning MiniLM-L6 on the text corpora: the quality, rank and Section 7 experiments.

Setup shared by every method, so that methods differ only in how they adapt the backbone:
- the task head starts from one linear probe (logistic regression on the frozen model's pooled
  features of the training split, computed once per dataset and cached) and then trains with the
  method's own optimizer and learning rate, like every other trained parameter (one AdamW group);
  "head only" is that probe itself;
- each method's learning rate is fixed in the profile and checked by the dev pilot (`run_pilot`:
  one seed, the profile's rate times factor ** step, the same training rule), which the results record;
- LoRA's alpha is constant in r (`lora_alpha`, the first r tried, 8, as the paper sets it "to the
  first r we try and not tune it"), so the update's scaling alpha / r falls as r grows: r = 1 gets
  8, r = 64 gets 1/8, and every rank shares LoRA's learning rate;
- AdamW (fused; weight decay 0.01), linear warm-up over 6% of the cap then linear decay to the cap
  (the paper's RoBERTa recipe, its horizon the most steps a run may take), gradient clipping at 1;
- one stopping rule for every method (`EarlyStopping` of suites.harness): the dev loss is checked
  every `eval_every` optimizer steps; a run stops after `patience` checks without improving it by
  more than `min_delta`, or at `max_checks` (then its record says `cap`); the model reported is the
  best check's;
- the test split is scored per example: `test_acc` is a 1-D array (100 for a correct prediction,
  0 otherwise), aligned across methods and seeds, so the judge can pair examples.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import numpy as np
import torch

from suites.harness import Diverged, EarlyStopping
from suites.lora.models import Q_ONLY, QV, adamw, build_classifier, family, prepare, sync, trainable

PROBE_MAX_ITER = 2000  # lbfgs iterations of the linear probe (it converges in far fewer on these features)


@lru_cache(maxsize=8)
def encoded(dataset: str, n_train: int | None, n_dev: int | None, n_test: int | None, max_len: int,
            unused_train_to_test: bool = False) -> dict:  # fmt: skip
    """Token ids of the fixed splits (no padding; batches are padded to their longest member)."""
    from suites.data.pretrained import minilm_tokenizer
    from suites.data.text import load_text

    data = load_text(dataset, n_train=n_train, n_dev=n_dev, n_test=n_test, unused_train_to_test=unused_train_to_test)
    tokenizer = minilm_tokenizer()  # MiniLM's WordPiece; the synthetic tiny BERT shares its vocabulary

    def enc(split):
        ids = tokenizer(list(split.texts), truncation=True, max_length=max_len)["input_ids"]
        return ids, torch.as_tensor(split.labels)

    return {"train": enc(data.train), "dev": enc(data.dev), "test": enc(data.test),
            "n_classes": data.n_classes, "pad": tokenizer.pad_token_id}  # fmt: skip


def data_key(dataset: str, s) -> tuple:
    return dataset, s.n_train, s.n_dev, s.n_test, s.max_len[dataset], s.unused_train_to_test


def data_of(dataset: str, s) -> dict:
    return encoded(*data_key(dataset, s))


def pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = torch.as_tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


@torch.no_grad()
def _pooled(model, split, pad_id: int, device: str, batch_size: int = 64) -> np.ndarray:
    """The classifier's input (mean-pooled last hidden states) for every example of a split."""
    ids, _ = split
    model.eval()
    feats = []
    for i in range(0, len(ids), batch_size):
        x, m = pad(ids[i : i + batch_size], pad_id)
        hidden = model.encoder(input_ids=x.to(device), attention_mask=m.to(device)).last_hidden_state
        mask = m.to(device).unsqueeze(-1).to(hidden.dtype)
        feats.append(((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).cpu().numpy())
    return np.concatenate(feats)


@lru_cache(maxsize=8)
def linear_probe(model_name: str, key: tuple) -> tuple[np.ndarray, np.ndarray, bool]:
    """(weight, bias, converged) of a logistic regression on the frozen pretrained features of the
    training split (`key`: see data_key): the head every method starts from. Deterministic (lbfgs);
    converged is lbfgs's own verdict (it stopped before max_iter), the "head only" run's record."""
    from sklearn.linear_model import LogisticRegression

    data = encoded(*key)
    model = build_classifier(model_name, data["n_classes"], "cpu")
    features = _pooled(model, data["train"], data["pad"], "cpu")
    probe = LogisticRegression(max_iter=PROBE_MAX_ITER).fit(features, data["train"][1].numpy())
    weight, bias = probe.coef_, probe.intercept_
    if weight.shape[0] == 1:  # sklearn's binary form: one row; the head needs one per class
        weight, bias = np.concatenate([-weight / 2, weight / 2]), np.concatenate([-bias / 2, bias / 2])
    return weight.astype(np.float32), bias.astype(np.float32), bool(probe.n_iter_.max() < PROBE_MAX_ITER)


def build(model_name: str, dataset: str, s, method: str, seed: int, device: str, r: int = 8,
          targets: str = "qv") -> torch.nn.Module:  # fmt: skip
    """A fresh classifier with the probe head, set up for `method` (LoRA: rank r, alpha = s.lora_alpha)."""
    weight, bias, _ = linear_probe(model_name, data_key(dataset, s))
    return _prepared(model_name, len(bias), s, method, seed, device, r, targets, (weight, bias))


def _prepared(model_name: str, n_classes: int, s, method: str, seed: int, device: str, r: int, targets: str,
              head: tuple[np.ndarray, np.ndarray] | None) -> torch.nn.Module:  # fmt: skip
    """The classifier set up for `method`, its head copied from `head` (None: left random, for timing)."""
    torch.manual_seed(seed)  # LoRA's A, adapters' weights and dropout masks
    model = build_classifier(model_name, n_classes, "cpu")
    if head is not None:
        with torch.no_grad():
            model.classifier.weight.copy_(torch.as_tensor(head[0]))
            model.classifier.bias.copy_(torch.as_tensor(head[1]))
    lora_targets = (QV if targets == "qv" else Q_ONLY)[family(model_name)]
    return prepare(model, model_name, method, r=r, alpha=s.lora_alpha, targets=lora_targets).to(device)


def optimizer_for(model, lr: float, s) -> tuple[torch.optim.Optimizer, object]:
    """AdamW over every trainable parameter, the head included, at the method's one learning rate;
    linear warm-up over 6% of the cap, then linear decay to the cap."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = adamw(trainable(model), lr=lr, weight_decay=0.01)
    cap = s.eval_every * s.max_checks
    return optimizer, get_linear_schedule_with_warmup(optimizer, math.ceil(0.06 * cap), cap)


def batches(data: dict, batch_size: int, seed: int, device: str):
    """Endless training batches: epochs reshuffled by a seeded generator, full batches only."""
    ids, labels = data["train"]
    n, gen = len(ids), torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen).tolist()
        for i in range(0, n - batch_size + 1, batch_size):
            x, m = pad([ids[j] for j in order[i : i + batch_size]], data["pad"])
            yield x.to(device), m.to(device), labels[order[i : i + batch_size]].to(device)


def train_step(model, optimizer, schedule, params, batch, step: int, lr: float) -> float:
    """One AdamW step on one batch; Diverged on a non-finite loss."""
    x, m, y = batch
    loss = torch.nn.functional.cross_entropy(model(x, m), y)
    if not torch.isfinite(loss):
        raise Diverged(f"loss {loss.item()} at step {step} (lr {lr:g})", metrics={"step": float(step)})
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def train(model, data: dict, lr: float, s, seed: int, device: str):
    """Train to the stopping rule (module docstring); leaves the model at its best check.
    Returns (training seconds, its TrainingRecord, the best check's dev evaluation); Diverged on a
    non-finite loss."""
    optimizer, schedule = optimizer_for(model, lr, s)
    params = [p for p in model.parameters() if p.requires_grad]
    rule = EarlyStopping(s.patience, s.min_delta, mode="min", cap=s.max_checks)
    best, best_dev = None, None
    stream = batches(data, s.batch_size, seed, device)
    seconds, step = 0.0, 0
    while True:
        model.train()
        for _ in range(s.eval_every):
            batch = next(stream)
            sync(device)
            start = time.perf_counter()  # the clock measures training steps only
            train_step(model, optimizer, schedule, params, batch, step, lr)
            sync(device)
            seconds += time.perf_counter() - start
            step += 1
        dev = evaluate(model, data, "dev", device)
        stop = rule.update(dev["loss"])
        if rule.improved:  # keep the best check's trainable weights (the head included) and its dev score
            best, best_dev = [p.detach().clone() for p in params], dev
        if stop:
            break
    with torch.no_grad():
        for p, b in zip(params, best, strict=True):
            p.copy_(b)
    return seconds, rule.record(), best_dev


@torch.no_grad()
def logits_of(model, split, pad_id: int, device: str, batch_size: int = 128) -> torch.Tensor:
    ids, _ = split
    model.eval()
    order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths together: less padding
    out = torch.empty(len(ids), model.classifier.out_features)
    for i in range(0, len(ids), batch_size):
        chunk = order[i : i + batch_size]
        x, m = pad([ids[j] for j in chunk], pad_id)
        out[torch.as_tensor(chunk)] = model(x.to(device), m.to(device)).float().cpu()
    return out


def predict(model, split, pad_id: int, device: str) -> np.ndarray:
    return logits_of(model, split, pad_id, device).argmax(-1).numpy()


def evaluate(model, data: dict, split: str, device: str) -> dict:
    """Mean cross-entropy, the per-example losses and accuracy (points) of a split."""
    logits, labels = logits_of(model, data[split], data["pad"], device), data[split][1]
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none").double()
    return {"loss": float(losses.mean()), "losses": losses.numpy(),
            "acc": float(100 * (logits.argmax(-1) == labels).double().mean())}  # fmt: skip


# --------------------------------------------------------------------------- run functions


def learning_rate(s, dataset: str, method: str) -> float:
    """The learning rate fixed in the profile (LoRA's serves every rank and target set)."""
    return 0.0 if method == "head" else s.lr[dataset][method]


def run_pilot(cell, ctx) -> dict[str, float]:
    """Dev loss (per example: the pilot's rule pairs rates on the same examples, see pilot.py) and
    accuracy of one method at the profile's learning rate times pilot_factor ** lr_step, trained by
    the same rule as the fine-tuning runs (and recording how it stopped)."""
    s, dataset, method = ctx.settings, cell.task_kwargs["dataset"], cell.method_kwargs["method"]
    lr = learning_rate(s, dataset, method) * s.pilot_factor ** cell.kwargs["lr_step"]
    model = build(s.text_model, dataset, s, method, cell.seed, ctx.device)
    data = data_of(dataset, s)
    seconds, record, dev = train(model, data, lr, s, cell.seed, ctx.device)
    return {"dev_loss": dev["losses"], "dev_acc": dev["acc"], "lr": lr,
            "train_s": seconds, "n_dev": float(len(data["dev"][0])), **record.metrics()}  # fmt: skip


_LORA_A: dict[tuple, dict[str, np.ndarray]] = {}  # (dataset, seed, r) -> A per adapted module, this process


def _train_lora(cell, ctx, r: int, targets: str = "qv"):
    s, dataset = ctx.settings, cell.task_kwargs["dataset"]
    model = build(s.text_model, dataset, s, "lora", cell.seed, ctx.device, r=r, targets=targets)
    seconds, record, dev = train(model, data_of(dataset, s), learning_rate(s, dataset, "lora"), s, cell.seed,
                                 ctx.device)  # fmt: skip
    if targets == "qv":
        _LORA_A[dataset, cell.seed, r] = lora_matrices(model)["A"]
    return model, seconds, record, dev


def run_finetune(cell, ctx) -> dict:
    """One method (or one LoRA rank) on one dataset and seed, trained to the rule; the whole test split scored."""
    from sklearn.metrics import f1_score

    from impl.lora_model import count_parameters
    from suites.harness import TrainingRecord

    s, dataset = ctx.settings, cell.task_kwargs["dataset"]
    kw, data = cell.method_kwargs, data_of(dataset, s)
    if kw["method"] == "lora":
        model, seconds, record, dev = _train_lora(cell, ctx, kw["r"], kw.get("targets", "qv"))
    elif kw["method"] == "head":  # the linear probe every method starts from, fitted by lbfgs to convergence
        model = build(s.text_model, dataset, s, "head", cell.seed, ctx.device)
        fitted = linear_probe(s.text_model, data_key(dataset, s))[2]
        record = TrainingRecord("converged" if fitted else "cap", 0, 0, 0)
        seconds, dev = 0.0, evaluate(model, data, "dev", ctx.device)
    else:
        model = build(s.text_model, dataset, s, kw["method"], cell.seed, ctx.device)
        seconds, record, dev = train(model, data, learning_rate(s, dataset, kw["method"]), s, cell.seed, ctx.device)
    test_y = data["test"][1].numpy()
    pred = predict(model, data["test"], data["pad"], ctx.device)
    metrics = {
        "test_acc": 100.0 * (pred == test_y),  # per example: the runner stores the array, the row its mean
        "test_f1": 100 * f1_score(test_y, pred, average="macro"),
        "dev_acc": dev["acc"],
        "dev_loss": dev["loss"],
        "lr": learning_rate(s, dataset, kw["method"]),
        "trainable_params": float(count_parameters(model)),
        "train_s": seconds,
        "steps": float(record.train_steps * s.eval_every),
        "n_test": float(len(test_y)),
        **record.metrics(),
    }
    if kw["method"] == "lora":
        metrics["lora_scaling"] = s.lora_alpha / kw["r"]
    if kw["method"] == "lora" and kw.get("targets", "qv") == "qv":
        metrics.update(section7(model, cell, ctx, kw["r"]))
    return metrics


def time_step(cell, ctx, steps: int = 3) -> float:
    """Seconds per training step of this profile's model for a fine-tuning or pilot cell (StepCost):
    one warm-up step, then `steps` timed steps of the suite's own training step."""
    s, dataset, kw = ctx.settings, cell.task_kwargs["dataset"], cell.method_kwargs
    method = kw["method"]
    if method == "head":
        return 0.0
    data = data_of(dataset, s)  # the head's values do not change a step's cost: no probe is fitted here
    model = _prepared(s.text_model, data["n_classes"], s, method, cell.seed, ctx.device, kw.get("r", 8),
                      kw.get("targets", "qv"), head=None)  # fmt: skip
    lr = learning_rate(s, dataset, method)
    optimizer, schedule = optimizer_for(model, lr, s)
    params, stream = [p for p in model.parameters() if p.requires_grad], batches(data, s.batch_size, cell.seed,
                                                                                 ctx.device)  # fmt: skip
    model.train()
    train_step(model, optimizer, schedule, params, next(stream), 0, lr)
    sync(ctx.device)
    start = time.perf_counter()
    for k in range(steps):
        train_step(model, optimizer, schedule, params, next(stream), k + 1, lr)
    sync(ctx.device)
    return (time.perf_counter() - start) / steps


# --------------------------------------------------------------------------- Section 7


def lora_matrices(model) -> dict[str, dict[str, np.ndarray]]:
    """Per adapted module: A (r x d_in), the update dW = s B A and the frozen W0, in float64."""
    from impl.lora_model import lora_layers

    out: dict[str, dict[str, np.ndarray]] = {"A": {}, "dW": {}, "W": {}}
    with torch.no_grad():
        for name, layer in lora_layers(model):
            out["A"][name] = layer.lora_A.double().cpu().numpy()
            # [out, in] layout (Conv1D stores W transposed; the analysis wants the map's own matrix)
            dw, w = layer.delta_weight().double(), layer.base.weight.double()
            out["dW"][name] = (dw.T if layer.fan_in_fan_out else dw).cpu().numpy()
            out["W"][name] = (w.T if layer.fan_in_fan_out else w).cpu().numpy()
    return out


def subspace_similarity(A1: np.ndarray, A2: np.ndarray, i: int, j: int) -> float:
    """The paper's phi(A1, A2, i, j) = ||U1_i^T U2_j||_F^2 / min(i, j), with U the right-singular
    vectors of A (its top i and j directions): 1 when one subspace contains the other, 0 when they
    are orthogonal (a normalised Grassmann similarity)."""
    u1 = np.linalg.svd(A1, full_matrices=False)[2][:i]
    u2 = np.linalg.svd(A2, full_matrices=False)[2][:j]
    return float(np.linalg.norm(u1 @ u2.T) ** 2 / min(i, j))


def amplification(dW: np.ndarray, W: np.ndarray, r: int, rng: np.random.Generator) -> tuple[float, float]:
    """Table 7: ||dW||_F / ||U^T W V||_F with U, V the top-r singular vectors of dW, and how much more
    W projects onto dW's directions than onto random ones (||U^T W V|| / ||U_rand^T W V_rand||)."""
    U, _, Vt = np.linalg.svd(dW)
    proj = np.linalg.norm(U[:, :r].T @ W @ Vt[:r].T)
    Ur = np.linalg.qr(rng.standard_normal((W.shape[0], r)))[0]
    Vr = np.linalg.qr(rng.standard_normal((W.shape[1], r)))[0]
    return float(np.linalg.norm(dW) / proj), float(proj / np.linalg.norm(Ur.T @ W @ Vr))


def section7(model, cell, ctx, r: int) -> dict[str, float]:
    """Amplification of the Wq updates (mean over layers) for this rank; for r = 64 also the
    similarity of the top direction of A between this run and the r = 8 run of the same seed
    (trained again here if this process has not trained it yet: the same seed gives the same run)."""
    mats = lora_matrices(model)
    rng = np.random.default_rng(0)
    q = [n for n in mats["dW"] if n.endswith(QV[family(ctx.settings.text_model)][0])]
    amp = [amplification(mats["dW"][n], mats["W"][n], r, rng) for n in q]
    out = {"amplification.q": float(np.mean([a for a, _ in amp])), "proj_ratio.q": float(np.mean([p for _, p in amp]))}
    if r == 64:
        key = (cell.task_kwargs["dataset"], cell.seed, 8)
        if key not in _LORA_A:
            _train_lora(cell, ctx, 8)
        a8 = _LORA_A[key]
        for kind, target in zip("qv", QV[family(ctx.settings.text_model)], strict=True):
            names = [n for n in a8 if n.endswith(target)]
            out[f"phi_top.{kind}"] = float(np.mean([subspace_similarity(a8[n], mats["A"][n], 1, 1) for n in names]))
    return out

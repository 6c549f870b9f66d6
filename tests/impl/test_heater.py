"""Heater against a numpy transcription of the official TensorFlow graph (model.py of
Zziwei/Heater--Cold-Start-Recommendation), weights copied across; parameter counts; switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impl.heater import FitConfig, Heater, HeaterConfig, drop_indicator, fit, sgd

EPS = 1e-3  # tf.contrib.layers.batch_norm's default epsilon


def _w(layer):
    """TF stores dense weights as [in, out] and biases as [1, out]."""
    return layer.weight.detach().double().numpy().T, layer.bias.detach().double().numpy()[None, :]


def _bn(h, bn, training):
    gamma, beta = bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy()
    if training:
        mean, var = h.mean(0), h.var(0)  # batch statistics (biased variance)
    else:
        mean, var = bn.running_mean.double().numpy(), bn.running_var.double().numpy()
    return gamma * (h - mean) / np.sqrt(var + EPS) + beta


def _official(model, Uin, Vin, Ucontent, drop, target, training):
    """Heater.build_model for user cold start (item_content_rank = 0), in numpy."""
    t = model.user_transform
    reg_loss = 0.0
    wg, bg = _w(t.gate)
    gate = np.tanh(Ucontent @ wg + bg)
    reg_loss += (wg**2).sum() + (bg**2).sum()
    experts = []
    for i in range(model.cfg.n_experts):  # scope 'Uexpert_<layer>_<i>'
        e = Ucontent
        for weights, biases in zip(t.weights, t.biases, strict=True):
            w, b = weights[i].detach().double().numpy(), biases[i].detach().double().numpy()[None, :]
            e = np.tanh(e @ w + b)
            reg_loss += (w**2).sum() + (b**2).sum()
        experts.append(e[:, None, :])
    concat = np.concatenate(experts, 1)  # batch x dim x rank_out
    ucontent_last = np.tanh(np.matmul(gate[:, None, :], concat)).reshape(len(Uin), -1)
    filt = 1 - drop
    diff = model.cfg.alpha * ((ucontent_last - Uin) ** 2).sum()
    u_last = Uin * filt + ucontent_last * (1 - filt)
    v_last = Vin
    outs = []
    for tower, x in ((model.user, u_last), (model.item, v_last)):
        layer = tower.layers[0]
        w, b = _w(layer.fc)
        h = np.tanh(_bn(x @ w + b, layer.bn, training))
        reg_loss += (w**2).sum() + (b**2).sum()
        w, b = _w(tower.out)
        outs.append(h @ w + b)
        reg_loss += (w**2).sum() + (b**2).sum()
    preds = (outs[0] * outs[1]).sum(1)
    loss = ((preds - target) ** 2).mean() + model.cfg.reg * reg_loss + diff
    return preds, loss, outs


def _model(**kw):
    torch.manual_seed(0)
    cfg = HeaterConfig(rank_in=6, user_content_dim=9, hidden=(4, 6), rank_out=5, n_experts=3, reg=1e-2, alpha=0.3, **kw)
    model = Heater(cfg).double()
    # Non-trivial weights (the 0.01 initialisation makes every tanh nearly linear).
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if "weight" in name else 0.2))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
    return model


def _batch(seed=1, n=7):
    rng = np.random.default_rng(seed)
    Uin, Vin = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    Ucontent = rng.normal(size=(n, 9)) * (rng.random((n, 9)) < 0.5)
    drop = np.array([[1.0], [0.0], [1.0], [0.0], [0.0], [1.0], [0.0]])[:n]
    target = (rng.random(n) < 0.3).astype(float)
    return Uin, Vin, Ucontent, drop, target


def _ours(model, Uin, Vin, Ucontent, drop, target):
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    u, v, extra = model(u_pref=t(Uin), v_pref=t(Vin), u_content=t(Ucontent), u_drop=t(drop))
    preds = (u * v).sum(1)
    loss = (preds - t(target)).pow(2).mean() + model.cfg.reg * model.l2() + extra
    return preds.detach().numpy(), float(loss), (u.detach().numpy(), v.detach().numpy())


@pytest.mark.parametrize("training", [True, False])
def test_forward_and_loss_match_the_official_graph(training):
    model = _model()
    model.train(training)
    batch = _batch()
    preds, loss, _ = _ours(model, *batch)
    ref_preds, ref_loss, _ = _official(model, *batch, training=training)
    np.testing.assert_allclose(preds, ref_preds, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-10)


def test_sparse_content_gives_the_same_embeddings():
    model = _model().eval()
    Uin, _, Ucontent, drop, _ = _batch()
    dense = model.user_embedding(torch.tensor(Uin), torch.tensor(Ucontent), torch.tensor(drop))
    for sparse_content in (torch.tensor(Ucontent).to_sparse(), torch.tensor(Ucontent).to_sparse_csr()):
        sparse = model.user_embedding(torch.tensor(Uin), sparse_content, torch.tensor(drop))
        torch.testing.assert_close(dense, sparse)


def test_single_expert_and_no_guide_switches_match_the_graph():
    for kw in ({"n_experts": 1}, {"alpha": 0.0}):
        torch.manual_seed(0)
        cfg = HeaterConfig(rank_in=6, user_content_dim=9, hidden=(6,), rank_out=5, reg=1e-2, **{"alpha": 0.3, **kw})
        model = Heater(cfg).double().train()
        batch = _batch()
        np.testing.assert_allclose(_ours(model, *batch)[1], _official(model, *batch, training=True)[1], rtol=1e-10)
    assert Heater(HeaterConfig(user_content_dim=3, n_experts=1)).user_transform.weights[0].shape[0] == 1


def test_parameter_count():
    cfg = HeaterConfig(rank_in=4, user_content_dim=6, hidden=(4,), rank_out=3, n_experts=2)
    # gate 6x2+2; experts 2 x (6x4+4); per side: dense 4x3+3, BatchNorm 2x3, output 3x3+3
    assert sum(p.numel() for p in Heater(cfg).parameters()) == 14 + 56 + 2 * (15 + 6 + 12)
    assert Heater(cfg).item_transform is None


def test_cold_rows_use_content_and_warm_rows_their_cf_vector():
    model = _model().eval()
    Uin, _, Ucontent, _, _ = _batch()
    t = torch.tensor
    ones, zeros = torch.ones(7, 1, dtype=torch.float64), torch.zeros(7, 1, dtype=torch.float64)
    # drop = 1: the CF vector is not read at all
    a = model.user_embedding(t(Uin), t(Ucontent), ones)
    b = model.user_embedding(t(Uin) * 5, t(Ucontent), ones)
    torch.testing.assert_close(a, b)
    # drop = 0: the content is not read at all
    c = model.user_embedding(t(Uin), t(Ucontent), zeros)
    d = model.user_embedding(t(Uin), t(Ucontent) * 0, zeros)
    torch.testing.assert_close(c, d)


def test_drop_indicator_replaces_exactly_floor_p_n_pairs():
    rng = np.random.default_rng(0)
    assert drop_indicator(1024, 0.5, rng).sum() == 512
    assert drop_indicator(1023, 0.3, rng).sum() == 306
    assert drop_indicator(100, 0.0, rng).sum() == 0


def test_guide_term_is_a_sum_over_the_batch():
    model = _model()
    Uin, Vin, Ucontent, drop, _ = _batch()
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    _, _, extra = model(u_pref=t(Uin), v_pref=t(Vin), u_content=t(Ucontent), u_drop=t(drop))
    phi = model.user_transform(t(Ucontent)).detach().numpy()
    np.testing.assert_allclose(float(extra), 0.3 * ((phi - Uin) ** 2).sum(), rtol=1e-10)


class Patience:
    """A minimal stopping rule (the suites pass suites.harness.training.EarlyStopping): max mode."""

    def __init__(self, patience):
        self.patience, self.best, self.since, self.improved = patience, -np.inf, 0, False

    def update(self, value):
        self.improved = value > self.best
        self.best, self.since = (value, 0) if self.improved else (self.best, self.since + 1)
        return self.since >= self.patience


def _fit_problem(sides=1):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 20
    content = torch.randn(n_users, 4)
    U, V = torch.randn(n_users, 6), torch.randn(n_items, 6)
    users = rng.integers(0, n_users, 200)
    items = (users % 5 + 10).astype(np.int64)  # positives among items 10..14, negatives from `warm`
    model = Heater(HeaterConfig(rank_in=6, user_content_dim=4, hidden=(6,), rank_out=6, n_experts=2))
    fed = []

    def inputs(u, i, drop):
        fed.append((np.asarray(i), drop.clone(), len(i)))
        return {"u_pref": U[u], "v_pref": V[i], "u_content": content[u], "u_drop": drop[:, :1]}

    return model, inputs, users, items, fed, rng


def test_fit_keeps_the_best_validation_state_and_stops_by_the_rule():
    model, inputs, users, items, fed, rng = _fit_problem()
    seen = []

    def validate(m):
        seen.append({k: v.clone() for k, v in m.state_dict().items()})
        return [0.1, 0.5, 0.2, 0.3, 0.4, 0.9][len(seen) - 1]

    cfg = FitConfig(epochs=6, batch=64, lr=0.05, p=0.2)
    warm = np.arange(3)  # negatives come from the warm items only
    result = fit(model, inputs, users, items, warm, cfg, validate, rng, Patience(3))
    assert result.best_epoch == 1 and len(result.losses) == 5 and result.valis == [0.1, 0.5, 0.2, 0.3, 0.4]
    seen_items = np.concatenate([f[0] for f in fed])
    assert set(seen_items) <= set(items) | set(warm) and set(warm) <= set(seen_items)
    assert len(seen_items) == 5 * 200 * (1 + cfg.neg)  # every positive plus 5 negatives, every epoch
    # p = 0.2 of each batch replaced (an inverted p, 1 - p, would replace 0.8 of it)
    assert all(d.shape == (n, 1) and float(d.sum()) == np.floor(0.2 * n) for _, d, n in fed)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, seen[1][k])


def test_fit_draws_independent_indicators_per_side_and_regresses_given_targets():
    model, inputs, users, items, fed, rng = _fit_problem()
    asked = []

    def target(u, i):
        asked.append((u.copy(), i.copy()))
        return np.full(len(u), 3.0)

    cfg = FitConfig(epochs=1, batch=64, lr=0.01, p=0.3, sides=2)
    fit(model, inputs, users, items, np.arange(20), cfg, lambda m: 0.0, rng, Patience(5), target=target)
    assert all(d.shape == (n, 2) and (d.sum(0) == np.floor(0.3 * n)).all() for _, d, n in fed)
    assert any(not torch.equal(d[:, 0], d[:, 1]) for _, d, _ in fed)  # two draws, not one copied
    (u, i), fed_items = asked[0], np.concatenate([f[0] for f in fed])
    assert len(u) == len(fed_items) == 200 * 6 and sorted(i) == sorted(fed_items)


def test_weight_decay_is_the_official_l2_term_and_the_lr_decays_on_schedule(monkeypatch):
    # one step of sgd() (weight decay 2 reg, BatchNorm free) equals plain momentum SGD on loss + reg * l2()
    model = _model().train()
    twin = _model().train()
    batch = _batch()
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    cfg = FitConfig(lr=0.1)
    for m, opt, with_l2 in ((model, sgd(model, cfg, model.cfg.reg), False),
                            (twin, torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9), True)):  # fmt: skip
        for _ in range(2):
            u, v, extra = m(u_pref=t(batch[0]), v_pref=t(batch[1]), u_content=t(batch[2]), u_drop=t(batch[3]))
            loss = ((u * v).sum(1) - t(batch[4])).pow(2).mean() + extra + (m.cfg.reg * m.l2() if with_l2 else 0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    # lr: x decay after every `decay_every` epochs
    rates = []
    real_step = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: rates.append(self.param_groups[0]["lr"])
                        or real_step(self, *a, **k))  # fmt: skip
    m, inputs, users, items, _, rng = _fit_problem()
    cfg = FitConfig(epochs=5, batch=1200, lr=0.01, decay_every=2, decay=0.5)
    fit(m, inputs, users, items, np.arange(20), cfg, lambda _: 0.0, rng, Patience(10))
    assert rates == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])

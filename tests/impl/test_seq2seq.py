"""impl.seq2seq: against a transcription of the official PreNorm/PostNorm stacks, masks, init, schedules,
and a tiny model that must learn to copy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from impl.norms import ScaleNorm
from impl.seq2seq import PlateauDecay, Seq2Seq, Seq2SeqConfig, inv_sqrt_lr


def tiny(**kw) -> Seq2Seq:
    cfg = dict(vocab_size=23, d_model=16, n_heads=2, d_ff=24, enc_layers=2, dec_layers=2, dropout=0.0, max_len=64)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, **kw})).eval()


# ---- transcription of tnq177/transformers_without_tears layers.py (forward only, dropout 0) ----
def official_attention(weights, biases, heads, q, k, v, mask):
    """MultiheadAttention.forward with proj_qkv; `mask` True where masked (official convention)."""
    d = q.shape[-1]
    q = F.linear(q, weights[:d], biases[:d])
    k = F.linear(k, weights[d : 2 * d], biases[d : 2 * d])
    v = F.linear(v, weights[2 * d : 3 * d], biases[2 * d : 3 * d])

    def split(t):
        b, n, _ = t.shape
        return t.reshape(b, n, heads, d // heads).transpose(1, 2).reshape(b * heads, -1, d // heads)

    q, k, v = split(q), split(k), split(v)
    att = torch.bmm(q, k.transpose(1, 2)) * (d // heads) ** -0.5
    bh, sl, tl = att.shape
    att = att.reshape(bh // heads, heads, sl, tl)
    if mask is not None:
        att = att.masked_fill(mask, -1e9)
    att = F.softmax(att, dim=-1).reshape(bh, sl, tl)
    out = torch.bmm(att, v).reshape(bh // heads, heads, sl, d // heads).transpose(1, 2).reshape(bh // heads, sl, -1)
    return F.linear(out, weights[3 * d :], biases[3 * d :])


def att_params(mha):
    w = torch.cat([mha.q.weight, mha.kv.weight, mha.o.weight])
    b = torch.cat([mha.q.bias, mha.kv.bias, mha.o.bias])
    return w, b


def official_stack(x, scales, sublayers, pre_act):
    """Encoder/Decoder.forward: scales[i] per sublayer, plus scales[-1] at the end under PreNorm."""
    for scale, sub in zip(scales, sublayers, strict=False):
        residual = x
        x = scale(x) if pre_act else x
        x = residual + sub(x)
        x = scale(x) if not pre_act else x
    return scales[-1](x) if pre_act else x


def official_logits(model: Seq2Seq, src, tgt_in):
    cfg, h = model.cfg, model.cfg.n_heads
    w = model.embed.normalized() if cfg.fixnorm else model.embed.weight
    pe = model.pe
    enc_in = F.embedding(src, w) * math.sqrt(cfg.d_model) + pe[: src.shape[1]]
    dec_in = F.embedding(tgt_in, w) * math.sqrt(cfg.d_model) + pe[: tgt_in.shape[1]]
    enc_mask = (src == cfg.pad_id).unsqueeze(1).unsqueeze(2)
    t = tgt_in.shape[1]
    dec_mask = (torch.triu(torch.ones(t, t), diagonal=1) == 1)[None, None]

    def ff(layer):
        return lambda x: layer.down(F.relu(layer.up(x)))

    def self_att(mha, mask):
        wb = att_params(mha)
        return lambda x: official_attention(*wb, h, x, x, x, mask)

    scales, subs = [], []
    for layer in model.encoder:
        scales += [layer.att.norm, layer.ff.norm]
        subs += [self_att(layer.att.fn.att, enc_mask), ff(layer.ff.fn)]
    enc = official_stack(enc_in, scales + [model.enc_norm], subs, cfg.prenorm)
    scales, subs = [], []
    for layer in model.decoder:
        wb = att_params(layer.cross.fn)
        scales += [layer.att.norm, layer.cross.norm, layer.ff.norm]
        subs += [
            self_att(layer.att.fn.att, dec_mask),
            lambda x, wb=wb: official_attention(*wb, h, x, enc, enc, enc_mask),
            ff(layer.ff.fn),
        ]
    dec = official_stack(dec_in, scales + [model.dec_norm], subs, cfg.prenorm)
    return F.linear(dec, w, model.out_bias)


def batch():
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])
    tgt = torch.tensor([[2, 11, 12, 13], [2, 14, 0, 0]])
    return src, tgt


@pytest.mark.parametrize("prenorm", [True, False])
@pytest.mark.parametrize("norm,fixnorm", [("layer", False), ("scale", False), ("scale", True)])
def test_matches_official_stacks_with_weights_copied(prenorm, norm, fixnorm):
    torch.manual_seed(0)
    model = tiny(prenorm=prenorm, norm=norm, fixnorm=fixnorm)
    with torch.no_grad():  # move every parameter off its init, so biases and gains count
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    src, tgt = batch()
    ours = model(src, tgt)
    theirs = official_logits(model, src, tgt)
    real = tgt != 0  # the official code leaves padded query rows unmasked too; compare real positions
    torch.testing.assert_close(ours[real], theirs[real], rtol=1e-4, atol=1e-4)


def test_prenorm_and_postnorm_differ_only_in_placement():
    torch.manual_seed(1)
    pre, post = tiny(prenorm=True), tiny(prenorm=False)
    pre_keys = {k: v.shape for k, v in pre.state_dict().items()}
    post_keys = {k: v.shape for k, v in post.state_dict().items()}
    extra = set(pre_keys) - set(post_keys)
    assert set(post_keys) <= set(pre_keys)
    assert extra == {"enc_norm.weight", "enc_norm.bias", "dec_norm.weight", "dec_norm.bias"}
    assert all(pre_keys[k] == post_keys[k] for k in post_keys)
    # same weights, different outputs: the norm's position matters
    pre.load_state_dict(post.state_dict(), strict=False)
    src, tgt = batch()
    assert not torch.allclose(pre(src, tgt), post(src, tgt))


def test_exact_parameter_count():
    d, f, v, L = 16, 24, 23, 2
    att = 4 * (d * d + d)
    ff = d * f + f + f * d + d
    ln = 2 * d
    enc = L * (att + ff + 2 * ln)
    dec = L * (2 * att + ff + 3 * ln)
    expected = v * d + enc + dec + 2 * ln + v  # tied embedding, two final norms, output bias
    assert sum(p.numel() for p in tiny().parameters()) == expected
    n_scale = sum(p.numel() for p in tiny(norm="scale").parameters())
    assert n_scale == expected - (2 * L + 3 * L + 2) * ln + (2 * L + 3 * L + 2)
    assert sum(isinstance(m, ScaleNorm) for m in tiny(norm="scale").modules()) == 2 * L + 3 * L + 2


def test_decoder_respects_the_causal_mask():
    torch.manual_seed(2)
    model = tiny()
    src, tgt = batch()
    base = model(src, tgt)
    changed = tgt.clone()
    changed[0, 2] = 20
    out = model(src, changed)
    torch.testing.assert_close(out[0, :2], base[0, :2])  # earlier positions do not see the change
    assert not torch.allclose(out[0, 2:], base[0, 2:])  # later ones do (the test can fail)
    torch.testing.assert_close(out[1], base[1])


def test_source_padding_is_ignored():
    torch.manual_seed(3)
    model = tiny()
    src, tgt = batch()
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("init,std", [("small", math.sqrt(2 / (5 * 256))), ("xavier", math.sqrt(2 / (2 * 256)))])
def test_attention_init_std(init, std):
    torch.manual_seed(4)
    model = Seq2Seq(
        Seq2SeqConfig(vocab_size=10, d_model=256, n_heads=4, d_ff=64, enc_layers=1, dec_layers=0, init=init)
    )
    w = model.encoder[0].att.fn.att.q.weight
    assert w.std().item() == pytest.approx(std, rel=0.02)


def test_label_smoothing_by_hand():
    model = tiny(vocab_size=4)
    logits = torch.tensor([[[2.0, 0.5, -1.0, 0.0]]])
    target = torch.tensor([[1]])
    logp = logits.log_softmax(-1)[0, 0]
    expected = -(0.9 * logp[1] + 0.1 * logp.mean())
    torch.testing.assert_close(model.loss(logits, target, 0.1), expected)
    assert model.loss(logits, torch.tensor([[0]]), 0.1).isnan()  # only padding: nothing to average


def test_inv_sqrt_schedule_by_hand():
    assert inv_sqrt_lr(1, 512, 4000) == pytest.approx(512**-0.5 * 4000**-1.5)
    assert inv_sqrt_lr(4000, 512, 4000) == pytest.approx(512**-0.5 * 4000**-0.5)  # the peak
    assert inv_sqrt_lr(16000, 512, 4000) == pytest.approx(512**-0.5 * 16000**-0.5)
    assert inv_sqrt_lr(2000, 512, 4000, scale=2.0) == pytest.approx(2 * 512**-0.5 * 2000 * 4000**-1.5)


def test_plateau_decay():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = PlateauDecay(opt, lr=3e-4)
    for loss in [5.0, 4.0, 4.5, 4.2, 4.1]:  # three validations without a new best
        sched.step_validation(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.8)
    sched.step_validation(3.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.8)


@pytest.mark.parametrize("prenorm,norm", [(True, "scale"), (False, "layer")])
def test_tiny_model_learns_to_copy(prenorm, norm):
    torch.manual_seed(5)
    model = tiny(vocab_size=12, d_model=32, n_heads=2, d_ff=64, enc_layers=1, dec_layers=1, prenorm=prenorm, norm=norm)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        body = torch.randint(4, 12, (32, 6), generator=gen)
        src = torch.cat([body, torch.full((32, 1), 3)], 1)
        tgt_in = torch.cat([torch.full((32, 1), 2), body], 1)
        loss = model.loss(model(src, tgt_in), src, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    body = torch.randint(4, 12, (16, 6), generator=gen)
    src = torch.cat([body, torch.full((16, 1), 3)], 1)
    out = model.greedy(src, bos=2, eos=3, max_len=8)
    assert torch.equal(out[:, :7], src)
    assert model.beam(src[:1], bos=2, eos=3, max_len=8, size=3) == src[0].tolist()


@pytest.mark.parametrize(("prenorm", "norm", "fixnorm"), [(True, "layer", False), (False, "layer", False),
                                                         (True, "scale", True), (False, "scale", False)])  # fmt: skip
def test_cached_decoding_equals_the_full_decoder(prenorm, norm, fixnorm):
    """One position at a time through the key/value cache gives the logits the whole-prefix decoder
    gives (a cache that mixed up positions, skipped the offset or recomputed cross-attention keys
    from the wrong input would not)."""
    torch.manual_seed(0)
    model = tiny(vocab_size=20, d_model=16, n_heads=2, d_ff=32, enc_layers=2, dec_layers=2, prenorm=prenorm,
                 norm=norm, fixnorm=fixnorm).eval()  # fmt: skip
    src = torch.randint(4, 20, (3, 7))
    src[0, 5:] = 0  # padding: the source mask must reach the cached cross-attention
    tgt = torch.randint(4, 20, (3, 6))
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        full = model.decode(tgt, memory, src_mask)
        cache = [{} for _ in model.decoder]
        steps = torch.cat([model.decode(tgt[:, i : i + 1], memory, src_mask, cache) for i in range(6)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)
    assert cache[0]["self"]["k"].shape[2] == 6 and cache[0]["cross"]["k"].shape[2] == 7


def test_word_dropout_replaces_tokens_with_unk_in_training_only():
    model = tiny(word_dropout=0.5, unk_id=1, pad_id=0)
    tokens = torch.randint(4, 23, (64, 20))
    tokens[:, 15:] = 0  # padding is never dropped
    assert torch.equal(model.drop_words(tokens), tokens)  # eval: untouched
    model.train()
    torch.manual_seed(0)
    dropped = model.drop_words(tokens)
    changed = dropped != tokens
    assert (dropped[changed] == 1).all() and not changed[:, 15:].any()
    assert 0.45 < changed[:, :15].float().mean() < 0.55  # about word_dropout of the real tokens
    assert torch.equal(tiny(word_dropout=0.0).train().drop_words(tokens), tokens)

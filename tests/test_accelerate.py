"""A step ready for a GPU, checked on a CPU: no host reads outside the rasterizer, bad updates undone on
the device, the loop reading every K steps, bfloat16 autocast and torch.compile of the encoder."""

from __future__ import annotations


import numpy as np
import pytest
import torch

import synth_core.clipasso as clipasso
import synth_core.clipdraw as clipdraw
from synth_core.accelerate import AcceleratedEncoder, accelerate, autocast_dtype
from synth_core.builtin import load_builtin_encoder
from synth_core.clipasso import Clipasso, ClipassoConfig
from synth_core.clipdraw import ClipDraw, ClipDrawConfig
from synth_core.engine import GPU_REPORT_EVERY, optimise, report_every
from synth_core.errors import BadRequest
from synth_core.events import Done, Progress, WarningEvent
from synth_core.jobs import parse_request, run_events
from synth_core.lab.host_reads import HostReads, step_reads
from synth_core.safe_step import guarded_update

from faults import NanAt


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


SMALL = ClipDrawConfig(strokes=8, steps=20, width=64, height=64)


# -- guarded_update ----------------------------------------------------------------------------
def _adam():
    torch.manual_seed(0)
    p = torch.randn(5, 2, requires_grad=True)
    q = torch.randn(3, requires_grad=True)
    return p, q, torch.optim.Adam([p, q], lr=0.1)


def _backward(p, q, poison: float | None = None):
    loss = (p ** 2).sum() + (q ** 3).sum()
    if poison is not None:
        loss = loss * poison
    loss.backward()
    return loss.detach()


def test_a_good_update_is_adams_own():
    p, q, opt = _adam()
    p2, q2 = (t.detach().clone().requires_grad_() for t in (p, q))
    plain = torch.optim.Adam([p2, q2], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        plain.zero_grad()
        loss = _backward(p, q)
        _backward(p2, q2)
        assert bool(guarded_update(opt, [p, q], loss))
        plain.step()
        assert torch.equal(p, p2) and torch.equal(q, q2)


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_a_bad_update_is_undone_with_the_optimisers_moments(poison):
    p, q, opt = _adam()
    opt.zero_grad()
    guarded_update(opt, [p, q], _backward(p, q))  # one good step: the moments exist
    saved = [t.detach().clone() for t in (p, q)]
    moments = [opt.state[t][k].clone() for t in (p, q) for k in ("exp_avg", "exp_avg_sq")]
    opt.zero_grad()
    ok = guarded_update(opt, [p, q], _backward(p, q, poison))
    assert not bool(ok)
    assert torch.equal(p, saved[0]) and torch.equal(q, saved[1])
    assert all(torch.equal(opt.state[t][k], m) for (t, k), m in zip([(t, k) for t in (p, q) for k in
                                                                      ("exp_avg", "exp_avg_sq")], moments))


def test_an_update_that_makes_a_value_non_finite_is_undone():
    p, q, opt = _adam()
    opt.zero_grad()
    _backward(p, q)
    before = p.detach().clone()

    def blow_up():
        p.data[0, 0] = float("inf")  # e.g. a clamp gone wrong

    assert not bool(guarded_update(opt, [p, q], torch.tensor(1.0), after=blow_up))
    assert torch.equal(p, before)


# -- no host reads outside the rasterizer --------------------------------------------------------
def test_a_clipdraw_step_reads_nothing_back_outside_the_rasterizer(encoder):
    run = ClipDraw(SMALL, encoder, "a red circle")
    run.step(0)
    reads = step_reads(run, clipdraw, 1)
    assert reads["device values"] == 0 and reads["rasterizer"] > 0, reads
    result = run.step(2)
    assert isinstance(result.loss, torch.Tensor) and isinstance(result.applied, torch.Tensor)


@pytest.mark.parametrize("batch_seeds", [True, False])
def test_a_clipasso_step_reads_nothing_back_outside_the_rasterizer(encoder, batch_seeds):
    torch.manual_seed(1)
    cfg = ClipassoConfig(strokes=6, steps=40, canvas=64, seeds=3, batch_seeds=batch_seeds)
    run = Clipasso(cfg, encoder, torch.rand(1, 3, 64, 64))
    run.step(0)
    run.frozen[1] = True  # a seed that stopped early is held on the device too
    before = run.strokes.points[1].detach().clone()
    reads = step_reads(run, clipasso, 1)  # not an evaluation step (those read every eval_every steps)
    assert reads["device values"] == 0, reads
    run.step(2)
    assert torch.equal(run.strokes.points[1], before)


def test_the_counter_sees_the_reads_it_is_for():
    with HostReads() as reads:
        x = torch.arange(6.0)
        float(x.sum()), bool(x.any()), x[x > 2], x.nonzero(), torch.repeat_interleave(torch.tensor([1, 2]))
        torch.repeat_interleave(torch.tensor([1, 2]), output_size=3)  # size given: no read
    assert reads.calls == {"__float__": 1, "__bool__": 1, "__getitem__": 1, "nonzero": 1, "repeat_interleave": 1}


# -- the loop reads every K steps ----------------------------------------------------------------
def test_reading_every_k_steps_still_reports_every_skipped_step(encoder):
    run = ClipDraw(SMALL, NanAt(encoder, {3, 7}), "a red circle")
    events = list(optimise(run, 12, snapshot_every=0, progress_every=5))
    assert [e.step for e in events if isinstance(e, Progress)] == [5, 10, 12]
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 2 and warnings[0].startswith("step 3:") and warnings[1].startswith("step 7:")
    assert all(isinstance(e.loss, float) for e in events if isinstance(e, Progress))
    assert np.all(np.isfinite(events[-1].picture.points))


def test_a_cancel_between_reports_keeps_the_last_state(encoder):
    run = ClipDraw(SMALL, encoder, "a red circle")
    calls = []
    events = list(optimise(run, 50, snapshot_every=0, progress_every=10,
                           should_stop=lambda: len(calls.append(1) or calls) > 7))
    done = events[-1]
    assert isinstance(done, Done) and done.cancelled and done.step == 7
    assert [e.step for e in events if isinstance(e, Progress)] == []
    assert np.array_equal(done.picture.points, run.picture().points)


def test_reports_come_every_step_on_a_cpu_and_every_k_on_a_gpu(encoder):
    class OnGpu:
        class encoder:
            device = torch.device("cuda")

    assert report_every(ClipDraw(SMALL, encoder, "a red circle")) == 1
    assert report_every(OnGpu()) == GPU_REPORT_EVERY > 1


# -- precision and compile -------------------------------------------------------------------------
def test_auto_precision_is_float32_off_cuda(encoder):
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("float32", torch.device("cuda")) is None
    assert autocast_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    assert accelerate(encoder, "auto") is encoder  # nothing to change: the encoder itself


def test_bfloat16_autocast_gives_float32_embeddings_close_to_float32(encoder):
    fast = accelerate(encoder, "bfloat16")
    assert isinstance(fast, AcceleratedEncoder)
    torch.manual_seed(0)
    images = torch.rand(4, 3, encoder.input_size, encoder.input_size, requires_grad=True)
    a, b = encoder.encode_image(images), fast.encode_image(images)
    assert b.dtype == torch.float32 and torch.nn.functional.cosine_similarity(a, b).min() > 0.99
    emb, feats = fast.encode_with_features(images)
    assert emb.dtype == torch.float32 and all(f.dtype == torch.float32 for f in feats)
    b.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()


def test_a_bfloat16_request_draws(encoder):
    req = parse_request({"prompt": "a red circle", "model": "builtin", "strokes": 6, "steps": 6, "canvas": 64,
                         "device": "cpu", "precision": "bfloat16", "tidy": False})
    events = list(run_events(req, encoder=encoder))
    losses = [e.loss for e in events if isinstance(e, Progress)]
    assert isinstance(events[-1], Done) and len(losses) == 6 and all(np.isfinite(losses))


def test_the_compiled_encoder_matches_and_compiles_once_per_shape(encoder):
    graphs = []

    def counting(gm, example_inputs):  # a torch.compile backend that runs the captured graph as is
        graphs.append(gm)
        return gm.forward

    fast = AcceleratedEncoder(encoder, None, compile=True, backend=counting)
    torch.manual_seed(0)
    for _ in range(3):
        images = torch.rand(4, 3, encoder.input_size, encoder.input_size)
        assert torch.allclose(fast.encode_image(images), encoder.encode_image(images), atol=1e-5)
        emb, feats = fast.encode_with_features(images)
        ref_emb, ref_feats = encoder.encode_with_features(images)
        assert torch.allclose(emb, ref_emb, atol=1e-5)
        assert all(torch.allclose(f, r, atol=1e-5) for f, r in zip(feats, ref_feats))
    assert len(graphs) == 2  # one graph per entry point, not one per call


def test_compile_through_aot_autograd_gives_the_same_gradients(encoder):
    fast = AcceleratedEncoder(encoder, None, compile=True, backend="aot_eager")
    torch.manual_seed(0)
    x = torch.rand(2, 3, encoder.input_size, encoder.input_size, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    fast.encode_image(x).sum().backward()
    encoder.encode_image(y).sum().backward()
    assert torch.allclose(x.grad, y.grad, atol=1e-5)


@pytest.mark.parametrize("bad", [{"precision": "half"}, {"precision": 16}, {"compile": "yes"}])
def test_bad_speed_settings_are_refused_in_one_line(bad):
    with pytest.raises(BadRequest) as e:
        parse_request({"prompt": "a red circle", **bad})
    assert list(bad)[0] in str(e.value) and "\n" not in str(e.value)


def test_compile_is_not_recorded_and_precision_is():
    meta = parse_request({"prompt": "a red circle", "compile": True, "precision": "float32"}).meta()
    assert "compile" not in meta and meta["precision"] == "float32"


def test_the_cli_passes_the_speed_options():
    from synth_core.cli import _request, build_parser

    args = build_parser().parse_args(["draw", "a red circle", "--out", "x", "--precision", "float32", "--compile"])
    req = parse_request(_request(args))
    assert req.precision == "float32" and req.compile


# -- threads chosen for the work size ----------------------------------------------------------------
def test_a_small_model_runs_on_one_thread_when_the_request_leaves_threads_to_the_engine(encoder):
    from synth_core.encoders.openclip import OpenClipEncoder
    from synth_core.jobs import auto_threads

    assert auto_threads(encoder) == 1  # the built-in model: ~1M parameters
    assert auto_threads(OpenClipEncoder.untrained("RN50", torch.device("cpu"))) == 0  # CLIP-sized: the host's
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for threads in (0, 2):
            req = parse_request({"prompt": "a red circle", "model": "builtin", "strokes": 4, "steps": 2, "canvas": 48,
                                 "device": "cpu", "threads": threads, "tidy": False})
            list(run_events(req, should_stop=lambda: seen.append(torch.get_num_threads()) or False, encoder=encoder))
            assert torch.get_num_threads() == 2  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1, 2, 2]  # during the run: auto picks 1; an explicit 2 is kept

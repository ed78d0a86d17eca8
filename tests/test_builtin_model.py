"""The built-in model (offline stand-in for CLIP, not CLIP) and its judge: shipped accuracy and contracts.

Accuracies are measured on images drawn fresh from seeds that training never used; the
thresholds are what the shipped weights must keep (docs/builtin-model.md has the full numbers).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from synth_core.builtin import COLOURS, SHAPES, caption, load_builtin_encoder, load_judge, tokenizer
from synth_core.builtin.checkpoint import save
from synth_core.builtin.judge import Judge
from synth_core.builtin.model import BuiltinEncoder
from synth_core.lab import shapes
from synth_core.errors import MissingWeights

SEED = 987_654  # not a training or held-out seed of scripts/train_builtin.py


@pytest.fixture(scope="module")
def encoder() -> BuiltinEncoder:
    return load_builtin_encoder("cpu")


@pytest.fixture(scope="module")
def judge() -> Judge:
    return load_judge("cpu")


def _images(n: int, seed: int, style: shapes.Style, scribble_frac: float = 0.0) -> tuple[torch.Tensor, shapes.Batch]:
    b = shapes.make_batch(n, seed, style, scribble_frac=scribble_frac, broken_frac=0.0)
    return torch.from_numpy(shapes.to_float(b.images)), b


def _zero_shot(encoder: BuiltinEncoder, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    names = [caption(c, s) for c in COLOURS for s in SHAPES]
    with torch.no_grad():
        sim = encoder.encode_image(x) @ encoder.encode_text(names).T
    pred = sim.argmax(1).numpy()
    return pred // len(SHAPES), pred % len(SHAPES), sim


# -- the shipped model ---------------------------------------------------------------------------
@pytest.mark.parametrize("style,min_colour,min_shape", [
    (shapes.MODEL_STYLE, 0.95, 0.9),  # its own generator, clutter included
    (shapes.JUDGE_STYLE, 0.95, 0.85),  # the judge's generator: other ranges, more wobble and clutter
])
def test_model_zero_shot_on_held_out_drawings(encoder, style, min_colour, min_shape):
    x, b = _images(300, SEED, style)
    pc, ps, _ = _zero_shot(encoder, x)
    assert (pc == b.colour).mean() >= min_colour
    assert (ps == b.shape).mean() >= min_shape


def test_model_prefers_the_right_shape_over_other_shapes_of_that_colour(encoder):
    """Cluttered, semi-transparent drawings: the right caption beats every same-colour wrong shape."""
    style = replace(shapes.MODEL_STYLE, clutter_prob=1.0, alpha=(0.4, 0.7))
    x, b = _images(150, SEED + 1, style)
    _, _, sim = _zero_shot(encoder, x)
    sim = sim.reshape(len(x), len(COLOURS), len(SHAPES))[torch.arange(len(x)), torch.from_numpy(b.colour)]
    right = sim[torch.arange(len(x)), torch.from_numpy(b.shape)]
    sim[torch.arange(len(x)), torch.from_numpy(b.shape)] = -2
    assert (right > sim.max(1).values).float().mean() >= 0.85


def test_model_ranks_a_scribble_below_the_shapes_it_does_not_show(encoder):
    x, b = _images(100, SEED + 2, shapes.MODEL_STYLE, scribble_frac=1.0)
    with torch.no_grad():
        img = encoder.encode_image(x)
        scribble = (img * encoder.encode_text([caption(COLOURS[c], shapes.SCRIBBLE) for c in b.colour])).sum(1)
        circle = (img * encoder.encode_text([caption(COLOURS[c], "circle") for c in b.colour])).sum(1)
    assert (scribble > circle).float().mean() >= 0.7


# -- the judge -------------------------------------------------------------------------------------
@pytest.mark.parametrize("style,min_shape", [
    (replace(shapes.JUDGE_STYLE, clutter_prob=1.0), 0.75),  # always cluttered, its hardest case
    (shapes.MODEL_STYLE, 0.85),  # the model's generator, which the judge never saw
    (replace(shapes.MODEL_STYLE, clutter_prob=0.0), 0.85),  # clean
])
def test_judge_accuracy_on_held_out_drawings(judge, style, min_shape):
    x, b = _images(300, SEED + 3, style)
    verdicts = judge.predict(x)
    assert np.mean([c == COLOURS[i] for (c, _), i in zip(verdicts, b.colour)]) >= 0.95
    assert np.mean([s == SHAPES[i] for (_, s), i in zip(verdicts, b.shape)]) >= min_shape


def test_judge_is_not_fooled_by_scribbles_and_disagrees_with_wrong_captions(judge):
    x, b = _images(120, SEED + 4, shapes.JUDGE_STYLE, scribble_frac=0.5)
    verdicts = judge.predict(x)
    scribble = b.shape == shapes.NONE
    assert np.mean([s == "none" for (_, s), sc in zip(verdicts, scribble) if sc]) >= 0.6
    # not constant: several colours and shapes are named, and wrong captions are rejected
    assert len({c for c, _ in verdicts}) == len(COLOURS) and len({s for _, s in verdicts}) >= 6
    whole = [(v, COLOURS[c], SHAPES[s]) for v, c, s, sc in zip(verdicts, b.colour, b.shape, scribble) if not sc]
    wrong_shape = [(c, SHAPES[(SHAPES.index(s) + 1) % len(SHAPES)]) for _, c, s in whole]
    assert np.mean([v != w for (v, _, _), w in zip(whole, wrong_shape)]) >= 0.95


def test_judge_takes_any_square_size(judge):
    img = shapes.render_shape("circle", "red", 200, np.random.default_rng(SEED), clutter=False, filled=False)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    colour, shape = judge.predict(x)[0]
    pc, ps = judge.probabilities(x)
    assert (colour, shape) == ("red", "circle")
    assert pc.shape == (1, len(COLOURS)) and ps.shape == (1, len(SHAPES) + 1)
    assert torch.allclose(ps.sum(1), torch.ones(1))


# -- the encoder contract ---------------------------------------------------------------------------
def test_encoder_contract(encoder):
    assert encoder.name == "builtin" and "not CLIP" in encoder.label and "stand-in" in encoder.label
    assert "not CLIP" in encoder.meta["disclaimer"]
    s = encoder.input_size
    x = torch.rand(3, 3, s, s, requires_grad=True)
    emb = encoder.encode_image(x)
    assert emb.shape == (3, 128) and torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    emb[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the optimiser needs gradients w.r.t. pixels
    t = encoder.encode_text(["a red circle", "A Blue Star!"])
    assert t.shape == (2, 128) and torch.allclose(t.norm(dim=1), torch.ones(2), atol=1e-5)
    feats = encoder.image_features(torch.rand(2, 3, s, s))
    assert [f.shape[-1] for f in feats] == [s // 2, s // 4, s // 8, s // 16]


def test_long_prompts_are_truncated_to_the_context(encoder):
    long = "a red circle " + " ".join(["and a drawing of a blue star"] * 6)
    assert encoder.count_tokens(long) > encoder.context_length
    kept = " ".join(tokenizer.words(long)[: encoder.context_length - 2])
    assert torch.allclose(encoder.encode_text([long]), encoder.encode_text([kept]), atol=1e-6)
    assert encoder.count_tokens("a red circle") == 5


def test_tokenizer_normalises_words():
    assert tokenizer.words("A RED, circle!") == ["a", "red", "circle"]
    assert tokenizer.words("two green crosses") == ["two", "green", "cross"]
    ids = tokenizer.tokenize(["two circles"])[0].tolist()
    assert ids[:4] == [tokenizer.SOT, tokenizer.UNK, tokenizer.INDEX["circle"], tokenizer.EOT]


# -- the generator ---------------------------------------------------------------------------------
def test_generator_is_deterministic_and_draws_what_it_says():
    a = shapes.make_batch(8, 5)
    b = shapes.make_batch(8, 5)
    c = shapes.make_batch(8, 6)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    img = shapes.render_shape("square", "blue", 64, np.random.default_rng(0), clutter=False)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    ink = img.min(2) < 0.8
    assert 0.01 < ink.mean() < 0.6
    blue = img[ink].mean(0)
    assert blue[2] > blue[0] and blue[2] > blue[1]
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.render_shape("hexagon", "red")


# -- training and checkpoints ------------------------------------------------------------------------
def _tiny_training(seed: int) -> dict[str, torch.Tensor]:
    from synth_core.lab import training

    was = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        training.deterministic(seed, 1)
        cfg = training.TrainConfig(steps=3, batch=8, images=16, seed=seed, log_every=100)
        model, _ = training.train_model(cfg, log=lambda _: None)
    finally:
        torch.use_deterministic_algorithms(was[0])
        torch.set_num_threads(was[1])
    return model.state_dict()


def test_training_is_deterministic():
    a, b, c = _tiny_training(1), _tiny_training(1), _tiny_training(2)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_missing_or_corrupt_weights_give_one_clear_line(tmp_path, encoder):
    with pytest.raises(MissingWeights, match="missing") as e:
        BuiltinEncoder.load("cpu", tmp_path / "nope.pt")
    assert "\n" not in str(e.value) and "train_builtin.py" in str(e.value)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 this is not a checkpoint" * 10)
    for loader in (BuiltinEncoder.load, Judge.load):
        with pytest.raises(MissingWeights, match="unreadable") as e:
            loader("cpu", bad)
        assert "\n" not in str(e.value)
    other = tmp_path / "other.pt"
    torch.save([1, 2, 3], other)
    with pytest.raises(MissingWeights, match="not a built-in model checkpoint"):
        BuiltinEncoder.load("cpu", other)
    judge_file = tmp_path / "judge_as_model.pt"
    save(judge_file, load_judge().net, load_judge().net.cfg, {})
    with pytest.raises(MissingWeights, match="another version|does not fit"):
        BuiltinEncoder.load("cpu", judge_file)


def test_the_strict_colour_teacher_pays_only_for_ink_in_the_captions_colour():
    """With STRICT_COLOUR the shape label's weight falls in proportion to the ink of other colours, and
    outlines drawn partly in other colours are among the training drawings (issue 8's teacher)."""
    from dataclasses import replace

    strict = replace(shapes.MODEL_STYLE, **shapes.STRICT_COLOUR, clutter_prob=0.0)
    pure = replace(strict, multicolour_prob=0.0)
    rng = np.random.default_rng(3)
    purities = [shapes._render_shape("circle", "red", 48, rng, False, False, 1.0, pure)[3] for _ in range(20)]
    assert min(purities) == 1.0  # one colour, no clutter: every bit of ink is red
    mixed = replace(strict, multicolour_prob=1.0)
    purities = [shapes._render_shape("square", "blue", 48, rng, False, False, 1.0, mixed)[3] for _ in range(40)]
    assert np.mean(purities) < 0.8 and min(purities) < 0.5
    weights = {name: np.mean([w for _, _, s, w in (shapes.sample(np.random.default_rng(i), style) for i in range(150))
                              if s != shapes.NONE])
               for name, style in (("pure", pure), ("mixed", mixed))}
    assert weights["mixed"] < 0.8 * weights["pure"]


def test_the_clean_outline_teacher_takes_weight_for_the_pens_strokes_off_the_outline():
    """With CLEAN_OUTLINE (train_builtin.py --clean-outline) some outlines get strokes of their own colour
    inside, across or beside them, and the label's weight falls with their share of the pen's ink; off,
    the teacher draws exactly what it drew before (no extra random draws)."""
    from dataclasses import replace

    off = replace(shapes.TEACHER_STYLE, clutter_prob=0.0, multicolour_prob=0.0)
    on = replace(off, **{**shapes.CLEAN_OUTLINE, "stray_prob": 1.0})
    for shape in ("circle", "square", "line"):
        a = shapes._render_shape(shape, "red", 48, np.random.default_rng(5), False, False, 1.0, off)
        b = shapes._render_shape(shape, "red", 48, np.random.default_rng(5), False, False, 1.0, on)
        assert a[4] == 0.0 and 0.05 < b[4] < 0.95  # a share of the red ink is off the outline
        assert (b[0] <= a[0] + 1e-6).all() and (b[0] < a[0] - 0.1).any()  # the outline, plus more ink
        assert a[3] == b[3] == 1.0  # strays are the pen's colour: purity does not see them
    weights = {name: np.mean([w for _, _, s, w in (shapes.sample(np.random.default_rng(i), style) for i in range(150))
                              if s != shapes.NONE])
               for name, style in (("off", off), ("on", on))}
    assert weights["on"] < 0.7 * weights["off"]
    plain = shapes.make_batch(8, 4, shapes.TEACHER_STYLE)
    again = shapes.make_batch(8, 4, replace(shapes.TEACHER_STYLE, stray_penalty=1.5))  # stray_prob 0: off
    assert np.array_equal(plain.images, again.images) and np.array_equal(plain.weight, again.weight)


def test_the_asterisk_teacher_shows_asterisks_as_scribbles_and_nothing_else_when_off():
    """With ASTERISKS (train_builtin.py --asterisks) a share of the scribbles are three or four strokes
    through one point, which the eye sees as no shape of its six (no star: no outline between the arms;
    no cross: more than two bars); off, the scribbles are exactly what they were."""
    from dataclasses import replace

    from synth_core.lab import eye

    on = replace(shapes.TEACHER_STYLE, clutter_prob=0.0, **{**shapes.ASTERISKS, "asterisk_prob": 1.0})
    seen = [eye.look(shapes.render_scribble("blue", 224, np.random.default_rng(i), style=on), "blue", "star")
            for i in range(12)]
    assert sum(v.seen_shape == "none" for v in seen) >= 10, [v.seen_shape for v in seen]
    assert all(v.purity > 0.9 and np.isfinite(v.shape_score) for v in seen)  # blue ink, fitted and refused
    off = [shapes.render_scribble("red", 64, np.random.default_rng(i)) for i in range(6)]
    zero = [shapes.render_scribble("red", 64, np.random.default_rng(i), style=replace(shapes.MODEL_STYLE,
                                                                                    asterisk_prob=0.0))
            for i in range(6)]
    assert all(np.array_equal(a, b) for a, b in zip(off, zero))
    data = shapes.make_batch(200, 3, replace(shapes.TEACHER_STYLE, **shapes.ASTERISKS), scribble_frac=1.0)
    assert (data.shape == shapes.NONE).all()  # asterisks are labelled scribbles


def test_the_robustness_check_measures_what_the_model_rewards():
    """The shipped model prefers the right shape and a whole outline over half of one; what it pays for the
    last tenth is measured, not asserted (docs/builtin-model.md: the gap issue 8 has to widen)."""
    from synth_core.lab import robustness

    out = robustness.check(load_builtin_encoder("cpu"), n=40)
    assert out["clean"]["wins"] >= 0.9 and out["completion"]["wins"] >= 0.9 and out["scribble"]["wins"] >= 0.9
    assert out["completion"]["gap"] > out["completion 0.75"]["gap"] > out["completion 0.9"]["gap"]


def test_completion_pairs_are_one_drawing_whole_and_broken():
    """The completion-margin term's pairs (train_builtin.py --completion-margin): closed outlines, a part f
    missing from the copy, made the same way every time. (Pose, colour, pen and clutter are shared; the
    outline's wobble and piecing may differ within a pair, so ink is not compared.)"""
    from synth_core.lab.training import completion_pairs

    whole, broken, colour, shape, f = completion_pairs(6, 3, shapes.TEACHER_STYLE)
    assert whole.shape == broken.shape and len(f) == 6 and ((f >= 0.6) & (f <= 0.95)).all()
    assert all(shapes.SHAPES[s] in shapes.CLOSED for s in shape)
    assert all(not np.array_equal(a, b) for a, b in zip(whole, broken))
    again = completion_pairs(6, 3, shapes.TEACHER_STYLE)
    assert np.array_equal(again[0], whole) and np.array_equal(again[1], broken)


def _train_script():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_builtin.py"
    spec = importlib.util.spec_from_file_location("train_builtin_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_builtin_no_stem_pool_trains_a_model_that_sees_64_px(tmp_path):
    """train_builtin.py --no-stem-pool (an experiment: the CNN without its first 2x2 pool) writes a
    checkpoint that loads as such: its first feature stage is at the full 64 px, not 32."""
    module = _train_script()
    was = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:  # the script sets the process's determinism and threads, as a training run must
        module.main(["--only", "model", "--no-stem-pool", "--steps", "1", "--images", "32", "--eval-images", "16",
                     "--threads", "1", "--workers", "1", "--out-dir", str(tmp_path)])
    finally:
        torch.use_deterministic_algorithms(was[0])
        torch.set_num_threads(was[1])
    encoder = BuiltinEncoder.load("cpu", tmp_path / "builtin_clip.pt")
    assert encoder.model.cfg.stem_pool is False
    # both phases ran: the plain model, then its adversarial fine-tune; the model's negative is on its card
    assert set(encoder.meta["phases"]) == {"plain", "robust"}
    assert encoder.meta["train"]["adversarial_eps"] == 1.5 and encoder.default_negatives == ("a scribble",)
    assert encoder.max_width_share == load_builtin_encoder("cpu").max_width_share == 4 / 224  # thin strokes, too
    features = encoder.image_features(torch.rand(1, 3, 64, 64))
    assert features[0].shape[-1] == 64
    assert load_builtin_encoder("cpu").image_features(torch.rand(1, 3, 64, 64))[0].shape[-1] == 32


def test_the_adversarial_images_stay_in_their_ball_and_raise_the_loss(encoder):
    """train_builtin.py --adversarial EPS trains on images a PGD attack moved (an experiment of issue 8):
    each stays within L2 distance EPS of its original and in [0, 1], the shipped model's loss on them is
    higher, and a larger ball raises it more."""
    from synth_core.lab import training

    cfg = training.TrainConfig()
    data = shapes.make_batch(24, 11, shapes.TEACHER_STYLE)
    keep = data.colour >= 0
    images = torch.from_numpy(data.images[keep]).float() / 255.0
    targets = training.class_targets(*(torch.from_numpy(a[keep]) for a in (data.colour, data.shape, data.weight)))
    captions = training.class_captions(torch.Generator().manual_seed(0))
    model = encoder.model
    with torch.no_grad():
        clean = training.clip_loss(model, images, targets, captions).item()
    losses = []
    for eps in (0.5, 1.5):
        moved = training.adversarial(model, images, targets, captions, eps, 2, torch.Generator().manual_seed(1))
        assert moved.min() >= 0 and moved.max() <= 1
        assert (moved - images).flatten(1).norm(dim=1).max() <= eps + 1e-4
        with torch.no_grad():
            losses.append(training.clip_loss(model, moved, targets, captions).item())
    assert clean < losses[0] < losses[1]
    assert cfg.adversarial_eps == 0.0  # off in the shipped recipe


def test_the_models_own_negative_prompt_joins_every_clipdraw_run(encoder):
    """The built-in model names, in its checkpoint's metadata, the negative prompt it was trained for
    ("a scribble"); every CLIPDraw run against it adds that to the user's negatives, once, whatever the
    prompt; an encoder without one (CLIP) adds nothing."""
    from synth_core.clipdraw import ClipDraw, ClipDrawConfig
    from synth_core.encoders.base import Encoder

    assert encoder.default_negatives == ("a scribble",)
    assert Encoder.default_negatives == ()
    cfg = ClipDrawConfig(strokes=2, steps=1, width=32, height=32)
    for prompt, given in (("a red circle", ()), ("a blue star", ("a green star",)), ("a red line", ("a scribble",))):
        run = ClipDraw(cfg, encoder, prompt, given)
        assert run.negative_prompts == (*given, *(() if "a scribble" in given else ("a scribble",)))
        assert len(run.negatives) == len(run.negative_prompts)
    bare = BuiltinEncoder(encoder.model, "cpu", {})  # a checkpoint without the key: no negative
    assert ClipDraw(cfg, bare, "a red circle").negative_prompts == ()


def test_the_shipped_models_favourite_pixels_show_the_prompts_colour(encoder):
    """What the model likes most for a prompt, found by gradient ascent on the pixels themselves
    (robustness.pixel_optimum): for the adversarially fine-tuned model a shape of the prompt's colour
    among faint specks; for the plain model it was a white page of coloured specks (docs: "A robust
    teacher"). Measured by the person-like eye's purity, over three prompts: plain model 0.02, shipped
    0.25 (AMD EPYC, AVX-512)."""
    from synth_core.lab import eye
    from synth_core.lab.robustness import pixel_optimum

    purity = [eye.look(pixel_optimum(encoder, f"a {colour} {shape}", steps=200), colour, shape).purity
              for colour, shape in (("red", "circle"), ("blue", "square"), ("green", "triangle"))]
    assert np.mean(purity) >= 0.12, purity


def test_train_builtin_refuses_a_bad_init_at_once(tmp_path, capsys):
    """--init names weights to fine-tune: a missing or damaged file, or --init with --adversarial 0, is one
    line and exit code 2 before any training image is drawn, and nothing is written."""
    module = _train_script()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for argv in (["--init", str(tmp_path / "missing.pt")], ["--init", str(bad)],
                 ["--init", "synth_core/weights/builtin_clip.pt", "--adversarial", "0"]):
        with pytest.raises(SystemExit) as e:
            module.main(["--only", "model", "--out-dir", str(tmp_path / "out"), *argv])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "error:" in err and ("--init" in err or ".pt" in err), err
    assert not (tmp_path / "out").exists()

"""Loading encoders: open_clip specs, local checkpoints, clear failures, device choice."""

from __future__ import annotations

import pytest
import torch

from synth_core.encoders import load_encoder, resolve_device
from synth_core.errors import BadRequest, MissingWeights


@pytest.mark.parametrize("spec,err,match", [
    ("ViT-B-99:openai", BadRequest, "unknown open_clip model"),
    ("ViT-B-32:nope", BadRequest, "available: openai"),
    ("ViT-B-32", BadRequest, "NAME:TAG"),
    ("ViT-B-32:/no/such/file.pt", MissingWeights, "does not exist"),
    ("", BadRequest, "model is empty"),
])
def test_bad_model_specs(spec, err, match):
    with pytest.raises(err, match=match):
        load_encoder(spec, "cpu")


def test_offline_without_weights_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeights) as e:
        load_encoder("RN101:openai", "cpu", cache_dir=str(tmp_path))
    assert "RN101:openai" in str(e.value) and "huggingface.co/timm/resnet101_clip.openai" in str(e.value)


@pytest.mark.slow
def test_local_checkpoint_loads_and_encodes(tmp_path):
    import open_clip

    ckpt = tmp_path / "ViT-B-32.pt"
    torch.save(open_clip.create_model("ViT-B-32").state_dict(), ckpt)  # untrained weights, real architecture
    enc = load_encoder(f"ViT-B-32:{ckpt}", "cpu")
    assert enc.input_size == 224 and enc.context_length == 77
    assert enc.count_tokens("a red circle") == 5
    img = torch.rand(2, 3, 224, 224, requires_grad=True)
    emb = enc.encode_image(img)
    assert emb.shape == (2, 512) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    emb.sum().backward()
    assert img.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in enc.model.parameters())  # frozen
    assert load_encoder(str(ckpt), "cpu").name.startswith("ViT-B-32:")  # bare file named after its architecture
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(ckpt.read_bytes()[:4096])
    with pytest.raises(MissingWeights, match="corrupt"):
        load_encoder(f"ViT-B-32:{corrupt}", "cpu")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(BadRequest, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BadRequest, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("arch,layers,shape", [("RN50", 5, (2, 512, 28, 28)), ("ViT-B-32", 12, (2, 49, 768))])
def test_features_without_hooks_are_the_towers_own(arch, layers, shape):
    """CLIPasso's feature maps come from open_clip's forward_intermediates (compilable): they are the
    outputs of the stem and stages (ResNet) or blocks (ViT, patch tokens), and the embedding is encode_image's."""
    from synth_core.encoders.openclip import OpenClipEncoder

    enc = OpenClipEncoder.untrained(arch, torch.device("cpu"))
    v = enc.model.visual
    blocks = [v.avgpool, v.layer1, v.layer2, v.layer3, v.layer4] if arch.startswith("RN") else list(v.transformer.resblocks)
    seen = []
    hooks = [b.register_forward_hook(lambda m, a, out: seen.append(out)) for b in blocks]
    torch.manual_seed(0)
    images = torch.rand(2, 3, enc.input_size, enc.input_size)
    try:
        reference = enc.encode_image(images)
    finally:
        for h in hooks:
            h.remove()
    emb, feats = enc.encode_with_features(images)
    assert len(feats) == layers and tuple(feats[enc.feature_layers[0]].shape[:2]) == shape[:2]
    assert tuple(feats[2].shape) == shape
    assert torch.equal(emb, reference)
    for f, s in zip(feats, seen):
        assert torch.allclose(f, (s if arch.startswith("RN") else s[:, 1:]).float(), atol=1e-6)

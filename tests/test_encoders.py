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

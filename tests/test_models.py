import urllib.error

import pytest
import torch
from torchvision.models import resnet50

from models import IBN, GeM, ReIDNet, ResNetBackbone, WeightsError, build_pooling

EPS32 = torch.finfo(torch.float32).eps


@pytest.mark.parametrize("name, channels", [("resnet50", 2048), ("resnet18", 512), ("resnet34", 512)])
@pytest.mark.parametrize("last_stride, size", [(1, (4, 2)), (2, (2, 1))])
def test_backbone_last_stride(name, channels, last_stride, size):
    net = ResNetBackbone(name, last_stride=last_stride).eval()
    assert net.out_channels == channels
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 32)).shape == (1, channels, *size)


def test_ibn_a_layout():
    net = ResNetBackbone("resnet50_ibn_a")
    for layer in (net.layer1, net.layer2, net.layer3):
        assert all(isinstance(block.bn1, IBN) for block in layer)
    assert not any(isinstance(m, IBN) for m in net.layer4.modules())
    ibn = net.layer1[0].bn1
    assert ibn.IN.num_features == 32 and ibn.BN.num_features == 32  # half and half of 64
    x = torch.randn(2, 64, 8, 4)
    out = ibn(x)
    ref_in = torch.nn.functional.instance_norm(x[:, :32], weight=ibn.IN.weight, bias=ibn.IN.bias)
    # float32 statistics over 8·4 = 32 values each: mean and variance off by <~32 eps32 relative,
    # on normalised outputs of magnitude |ref_in|
    assert torch.allclose(out[:, :32], ref_in, rtol=0, atol=32 * EPS32 * ref_in.abs().max().item())


def test_pooling():
    x = torch.rand(2, 5, 4, 3) + 0.1
    # float32 means of 4·3 = 12 positive values, summed in possibly different orders: <= 12 eps32 relative
    assert torch.allclose(build_pooling("avg")(x), x.mean((2, 3)), rtol=12 * EPS32, atol=0)
    assert torch.equal(build_pooling("max")(x), x.amax((2, 3)))  # picks an element: exact
    gem = GeM(p=3.0)
    # the 12-term mean of cubes (<= 12 eps32 relative, plus a few for pow) shrinks by a third
    # through the cube root: <= ~6 eps32 relative
    assert torch.allclose(gem(x), x.pow(3).mean((2, 3)).pow(1 / 3), rtol=12 * EPS32, atol=0)
    assert gem.p.requires_grad
    with pytest.raises(ValueError, match="pooling"):
        build_pooling("median")


@pytest.mark.parametrize("neck, dim", [("id", 512), ("bnneck", 2048)])
def test_reid_net_outputs(neck, dim):
    net = ReIDNet(7, neck=neck, pooling="gem")
    out = net(torch.randn(4, 3, 64, 32))
    assert out.logits.shape == (4, 7) and out.feature.shape == (4, 2048) and out.embedding.shape == (4, dim)
    new = {id(p) for p in net.new_parameters()}
    assert not any(id(p) in new for p in net.backbone.parameters())
    assert id(net.head.classifier.weight) in new


def test_id_head_is_linear_bn_dropout_linear():
    net = ReIDNet(3, neck="id", embed_dim=16, dropout=0.5)
    head = net.head
    assert (head.embed.out_features, head.bn.num_features, head.dropout.p, head.classifier.in_features) == (16, 16, 0.5, 16)
    net.eval()
    x = torch.randn(2, 2048)
    logits, emb = head(x)
    # the same modules on the same input (dropout is the identity in eval): bit-identical
    assert torch.equal(emb, head.bn(head.embed(x)))
    assert torch.equal(logits, head.classifier(emb))


def test_pretrained_true_offline_names_file_and_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as err:
        ResNetBackbone("resnet50", pretrained=True)
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    with pytest.raises(WeightsError, match="resnet50_ibn_a-d9d0bb7b.pth"):
        ResNetBackbone("resnet50_ibn_a", pretrained=True)


def test_pretrained_from_path_and_from_cache(monkeypatch, tmp_path):
    reference = resnet50()
    torch.save(reference.state_dict(), tmp_path / "r50.pth")
    net = ResNetBackbone("resnet50", pretrained=str(tmp_path / "r50.pth"))
    assert torch.equal(net.stem[0].weight, reference.conv1.weight)
    assert torch.equal(net.layer3[2].conv2.weight, reference.layer3[2].conv2.weight)
    # `true` finds the file in the torch cache without downloading
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {"module." + k: v for k, v in reference.state_dict().items()}},
               tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth")
    net = ResNetBackbone("resnet50", pretrained=True)
    assert torch.equal(net.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)


def test_bad_weight_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        ResNetBackbone("resnet50", pretrained=str(tmp_path / "missing.pth"))
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="is not a resnet50 checkpoint"):
        ResNetBackbone("resnet50", pretrained=str(tmp_path / "other.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"xx")
    with pytest.raises(WeightsError, match="could not be read"):
        ResNetBackbone("resnet50", pretrained=str(tmp_path / "garbage.pth"))


def test_a_recomputed_backbone_trains_the_same_to_the_bit():
    """Train mode, two steps of gradients: the same outputs, gradients and BN running statistics and
    batch counts (the recomputation in backward leaves them alone), and nothing inside the blocks kept."""
    from bench.saved_activations import SavedActivations
    torch.manual_seed(0)
    plain = ResNetBackbone("resnet18", last_stride=1).train()
    again = ResNetBackbone("resnet18", last_stride=1, recompute=True).train()
    again.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 64, 32)
    saved = []
    for net in (plain, again):
        for _ in range(2):
            with SavedActivations(net) as held:
                out = net(x)
            out.square().mean().backward()
        saved.append(held.peak_bytes)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), again.state_dict().values()))
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(plain.parameters(), again.parameters()))
    assert again.layer1[0].bn1.num_batches_tracked.item() == 2
    # kept: each stage's input (the image, the stem's output, each block's output but the last), counted here
    stages = [plain.stem, *plain.layer1, *plain.layer2, *plain.layer3, *plain.layer4]
    kept, h = 0, x
    with torch.no_grad():
        for stage in stages:
            kept, h = kept + h.numel() * h.element_size(), stage(h)
    assert saved[1] == kept < saved[0] / 3

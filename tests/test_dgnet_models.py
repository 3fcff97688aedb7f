"""DG-Net networks and loss pieces at tiny size: the contract the trainer and visual tools use."""
import copy

import pytest
import torch

from configs.loader import load_config
import torch.nn.functional as F

from models import build_dgnet, build_dgnet_from_state
from models.generative.blocks import GroupedMLP, PointwiseConv, UpConv
from trainers.dgnet_losses import TEACHER_STYLES, ramp, teacher_targets
from trainers.gan import frozen, gradient_penalty, input_gradient_only


EPS32, EPS64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps


def summed_magnitudes(op, inputs, grad_out):
    """For y = op(*inputs), linear in each input, the size of the terms each element of y and each
    input's gradient (for the output gradient grad_out) is summed from: op and its backward run on
    the absolute values, |y|-terms = op(|inputs|), gradient terms = the backward of |grad_out|."""
    absolute = [t.detach().abs().requires_grad_() for t in inputs]
    out = op(*absolute)
    return out.detach(), torch.autograd.grad(out, absolute, grad_out.detach().abs())


def float32_sum_tol(magnitude, terms):
    """Two float32 evaluations of the same n-term sums in different orders (any kernel, any thread
    count): each is within (n - 1)·2^-24 of the exact sum, relative to the size of the summed terms
    (the worst case, not the random-walk estimate, which a blocked kernel can exceed)."""
    return terms * EPS32 * magnitude


def tiny_net_cfg(*overrides):
    return load_config(None, ["model.backbone=resnet18", "gen.dim=4", "gen.mlp_dim=16", "gen.n_res=2",
                              "dis.dim=4", "dis.n_res=1", "dgnet.stripes=2", *overrides])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_dgnet(tiny_net_cfg(), num_classes=5).eval()


def test_contract_shapes_and_swap(net):
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        code = net.encode_appearance(x).code
        structure = net.encode_structure(x)
        assert code.shape == (3, 512, 2)           # ResNet-18 width × stripes
        assert structure.shape == (3, 32, 16, 8)   # 8·gen.dim at 1/4
        # the encoder sees the channel mean g = fl(S / 3), and the mean of three copies of such a g,
        # fl(fl(3g) / 3), is g again: the same grey input, so bit-identical
        assert torch.equal(net.encode_structure(x), net.encode_structure(x.mean(1, keepdim=True).expand_as(x)))
        # the same calls on the same inputs: bit-identical (re-encoding x.flip(0) rather than
        # flipping `code`, since a batch in another order may meet other conv blockings)
        out = net.decode(structure, net.encode_appearance(x.flip(0)).code)
        assert out.shape == x.shape
        assert torch.equal(net.swap(x, x.flip(0)), out)
        assert [s.shape[-2:] for s in net.discriminator(out)] == [(16, 8), (8, 4), (4, 2)]


def test_structure_map_at_half_resolution_keeps_the_layers():
    """gen.downsample 1: the same weights' shapes (a checkpoint's layout does not say the stride), a map
    twice as fine each way, images of the input's size; GCL's generator follows the same section."""
    torch.manual_seed(0)
    fine = build_dgnet(tiny_net_cfg("gen.downsample=1", "gen.mlp_input=code"), num_classes=5).eval()
    coarse = build_dgnet(tiny_net_cfg(), num_classes=5)
    assert {k: v.shape for k, v in fine.state_dict().items() if not k.startswith("decoder.mlp")} == \
        {k: v.shape for k, v in coarse.state_dict().items() if not k.startswith("decoder.mlp")}
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert fine.encode_structure(x).shape == (2, 32, 32, 16)
        assert fine.swap(x, x.flip(0)).shape == x.shape
    from models.gcl import build_gcl
    gcl = build_gcl(load_config(None, ["trainer=gcl", "model.backbone=resnet18", "gen.dim=4", "gen.mlp_dim=16",
                                       "gen.n_res=2", "dis.dim=4", "dis.n_res=1", "gcl.stripes=2",
                                       "gen.downsample=1", "gen.mlp_input=code"]))
    assert gcl.structure.downsample == 1 and gcl.decoder.mlp_input == "code"
    with pytest.raises(ValueError, match="gen.downsample must be 1 or 2"):
        build_dgnet(tiny_net_cfg("gen.downsample=3"), num_classes=5)


def test_state_round_trip_and_code_width_follows_the_backbone(net):
    again = build_dgnet_from_state(tiny_net_cfg(), net.state_dict()).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(again.swap(x, x.flip(0)), net.swap(x, x.flip(0)))
    wide = build_dgnet(tiny_net_cfg("model.backbone=resnet50", "dgnet.stripes=4", "gen.n_res=4"), 3)
    assert wide.appearance.code_dim == 2048 and wide.decoder.mlp.weights[0].shape == (8, 2048, 16)
    with pytest.raises(ValueError, match="stripes"):
        build_dgnet(tiny_net_cfg("dgnet.stripes=3"), 3)


def test_bfloat16_autocast_forward(net):
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net.swap(x, x.flip(0))
        scores = net.discriminator(out)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert all(torch.isfinite(s.float()).all() for s in scores)


@pytest.mark.parametrize("kernel", [5, 3, 7])
def test_fused_upsample_conv_equals_upsample_then_conv(kernel):
    torch.manual_seed(0)
    up = UpConv(3, 4, kernel)
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    direct = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (kernel // 2,) * 4, mode="replicate"),
                      up.weight, up.bias)
    fused = up(x)
    assert fused.shape == direct.shape == (2, 4, 10, 8)
    # the same products summed in other groupings (the fused taps add weights first): per element,
    # 3·k² terms, sized as the direct convolution of the absolute values
    z = F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (kernel // 2,) * 4, mode="replicate")
    conv = lambda z, w, b: F.conv2d(z, w, b)  # noqa: E731
    size, (_, w_size, _) = summed_magnitudes(conv, [z, up.weight, up.bias], 2 * direct)
    assert ((fused - direct).abs() <= float32_sum_tol(size, 3 * kernel ** 2)).all()
    upstream = 2 * direct.detach()  # one output gradient for both: only the backward's sums differ
    (g_direct,) = torch.autograd.grad(direct, up.weight, upstream)
    (g_fused,) = torch.autograd.grad(fused, up.weight, upstream)
    # each weight's gradient sums 2·y·z over the 2·10·8 output positions (sized by w_size, the
    # weight gradient of the absolute values); the fused form adds its taps' gradients on top
    assert ((g_fused - g_direct).abs() <= float32_sum_tol(w_size, 2 * 10 * 8 + kernel ** 2)).all()


def test_decode_with_an_index_equals_decoding_the_gathered_maps(net):
    # An identity of the algebra, checked in float64: in float32 the shared first convolutions run
    # on a batch of 2 against 5 (other kernels, other summation orders), and their round-off passes
    # through the whole decoder, down to gradients that are round-off themselves (a bias before an
    # instance norm has none). In float64 that is ~eps64·Σ_layers sqrt(terms) ≈ 4e-14 of the values
    # involved (1e-12 leaves margin for the norms' amplification), while a wrong index moves them by O(1).
    decoder = copy.deepcopy(net.decoder).double()
    torch.manual_seed(0)
    structure = torch.randn(2, 32, 16, 8, dtype=torch.float64, requires_grad=True)
    code = torch.randn(5, 512, 2, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 0, 1])
    shared = decoder(structure, code, index)
    direct = decoder(structure[index], code, None)
    assert torch.allclose(shared, direct, rtol=0, atol=1e-12 * direct.abs().max().item())
    weights = [structure, code, *decoder.parameters()]
    g_shared = torch.autograd.grad(shared.square().mean(), weights)
    g_direct = torch.autograd.grad(direct.square().mean(), weights)
    scale = max(g.abs().max().item() for g in g_direct)  # the size of the backward's terms
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12 * scale) for a, b in zip(g_shared, g_direct))


def test_pointwise_conv_equals_a_1x1_convolution():
    torch.manual_seed(0)
    conv = PointwiseConv(5, 3)
    x = torch.randn(2, 5, 6, 4, requires_grad=True)
    ours, reference = conv(x), F.conv2d(x, conv.weight, conv.bias)
    weights = [x, conv.weight, conv.bias]
    # a matmul against oneDNN's convolution: the same sums in other orders. Per element, 5 + 1 terms
    # forward; backward 3 (input), 2·6·4 = 48 (weight, bias) terms, sized on absolute values.
    size, grad_sizes = summed_magnitudes(lambda x, w, b: F.conv2d(x, w, b), weights, 2 * reference)
    assert ((ours - reference).abs() <= float32_sum_tol(size, 6)).all()
    upstream = 2 * reference.detach()  # one output gradient for both: only the backward's sums differ
    for a, b, g_size, n in zip(torch.autograd.grad(ours, weights, upstream),
                               torch.autograd.grad(reference, weights, upstream), grad_sizes, (3, 48, 48)):
        assert ((a - b).abs() <= float32_sum_tol(g_size, n)).all()


def test_mlp_batch_norm_removes_what_all_codes_share():
    torch.manual_seed(0)
    mlp = GroupedMLP(3, [6, 8, 5], norm="bn").train()
    x = torch.randn(4, 3, 6)
    shared = 5 * torch.randn(1, 3, 6)  # the same vector added to every code of the batch
    # in float64: the identity is the algebra's; in float32 the rounding of x + shared alone
    # (~2^-24 · 20) would pass through the layers. Here the shared part (<~ 20) cancels in the batch
    # norm to ~eps64·20 per layer, magnified by the weights and 1/std: far below 1e-10.
    mlp64 = copy.deepcopy(mlp).double()
    x64, shared64 = x.double(), shared.double()
    assert torch.allclose(mlp64(x64), mlp64(x64 + shared64), rtol=0, atol=1e-10)
    plain = GroupedMLP(3, [6, 8, 5], norm="none")
    assert not torch.allclose(plain(x), plain(x + shared), atol=1e-2)
    with pytest.raises(ValueError, match="gen.mlp_norm"):
        GroupedMLP(3, [6, 8, 5], norm="batch")


def test_frozen_call_reaches_the_input_only():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    stats = module[1].running_mean.clone()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    frozen(module)(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in module.parameters())
    assert torch.equal(module[1].running_mean, stats)


def test_one_pass_serves_a_frozen_and_a_live_consumer():
    """input_gradient_only: the live consumer's gradient moves only the parameters, the frozen consumer's
    only the source — the same gradients as a frozen pass plus a live pass on a detached copy."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 2, 3)).train()
    # float64: the two routes run the same arithmetic through different graphs (an input-only
    # backward inside the backward pass against a second forward); what is checked is where the
    # gradients go, so round-off (~eps64 times the summed terms) should not be in the way
    net = net.double()
    params = list(net.parameters())
    source_param = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    source = source_param * 2  # an output of another network (the generator)
    live_w, frozen_w = torch.randn(2, 2, 4, 4, dtype=torch.float64), torch.randn(2, 2, 4, 4, dtype=torch.float64)

    leaf = source.detach().requires_grad_(True)
    out = net(leaf)
    loss = (out * live_w).sum() + (input_gradient_only(out, leaf, source) * frozen_w).square().sum()
    shared = torch.autograd.grad(loss, [source_param, *params])

    source = source_param * 2
    reference_loss = (net(source.detach()) * live_w).sum() + (frozen(net)(source) * frozen_w).square().sum()
    reference = torch.autograd.grad(reference_loss, [source_param, *params])
    scale = max(g.abs().max().item() for g in reference)
    # two 3x3 convolutions and a batch norm over 2·6·6 positions: ~eps64·sqrt(terms) ≈ 1e-15 of the scale
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12 * scale) for a, b in zip(shared, reference))
    assert shared[0].abs().sum() > 0 and all(g.abs().sum() > 0 for g in shared[1:])


def test_gradient_penalty_matches_the_definition():
    x = torch.randn(3, 2, requires_grad=True)
    scores = [(x ** 2).sum(1), 3 * x.sum(1)]  # gradients 2x and 3
    expected = (4 * x.detach() ** 2).sum(1).mean() + 9 * 2
    # float32: exact gradients (2x, 3), then a few sums and squares of positive terms: <= ~8 roundings
    assert torch.allclose(gradient_penalty(scores, x), expected, rtol=8 * EPS32, atol=0)


def test_ramp_is_a_function_of_the_iteration():
    assert ramp(100, 100, 0.5, 2.0) == 0.0
    assert ramp(103, 100, 0.5, 2.0) == 1.5
    assert ramp(10_000, 100, 0.5, 2.0) == 2.0


@pytest.mark.parametrize("style", TEACHER_STYLES)
def test_teacher_targets_are_distributions(style):
    torch.manual_seed(0)
    from models import build_reid_net
    teacher = build_reid_net(load_config(None, ["model.backbone=resnet18"]).model, 6).eval()
    images = torch.randn(4, 3, 64, 32)
    a, s = torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 0, 1])
    target = teacher_targets(teacher, images, style, 6, a, s)
    # float32 probabilities <= 1: softmax, a mean of two and a renormalisation, then 6-term sums
    assert target.shape == (4, 6) and torch.allclose(target.sum(1), torch.ones(4), rtol=0, atol=8 * EPS32)
    if style == "appearance":
        assert torch.equal(target.argmax(1), a)
    if style == "two_label":
        outside = torch.ones(4, 6, dtype=torch.bool)
        outside[torch.arange(4), a] = outside[torch.arange(4), s] = False
        assert target[outside].abs().sum() == 0
    if style == "uniform":
        assert torch.equal(target, torch.full((4, 6), 1 / 6))  # the float32 nearest 1/6 both


def test_recomputed_stages_give_the_same_images_and_gradients_keeping_less():
    from bench.saved_activations import SavedActivations
    from models.generative import to_grey
    torch.manual_seed(0)
    plain = build_dgnet(tiny_net_cfg(), num_classes=5)
    again = build_dgnet(tiny_net_cfg("gen.recompute=true"), num_classes=5)
    again.load_state_dict(plain.state_dict())
    x, code = torch.randn(3, 3, 64, 32), torch.randn(3, 512, 2)
    results = []
    for net in (plain, again):
        with SavedActivations(net.structure) as structure_saved:
            structure = net.encode_structure(x)
        with SavedActivations(net.decoder) as decoder_saved:
            out = net.decode(structure, code)
        params = [*net.structure.parameters(), *net.decoder.parameters()]
        results.append((out, torch.autograd.grad(out.square().mean(), params),
                        structure_saved.peak_bytes, decoder_saved.peak_bytes))
    (out, grads, enc, dec), (out_r, grads_r, enc_r, dec_r) = results
    # the same kernels on the same shapes, once more in backward: equal to the bit
    assert torch.equal(out, out_r) and all(torch.equal(a, b) for a, b in zip(grads, grads_r))
    # what is kept is each stage's input, for its recomputation: for the encoder, the grey image and the
    # outputs of all stages but the last, counted here
    kept, h = 0, to_grey(x)
    with torch.no_grad():
        for stage in plain.structure.net:
            kept, h = kept + h.numel() * h.element_size(), stage(h)
    assert enc_r == kept < enc / 2
    # the decoder: one map per stage instead of the several inside each (convs, norms, activations;
    # 3.4x fewer bytes at this size), beside the AdaIN MLP's activations, which are kept as before
    assert dec_r < dec / 2

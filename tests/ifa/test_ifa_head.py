"""IFAHead: reference == an independent grid_sample re-implementation of the release; fused == reference
(logits and parameter gradients, eval and train, integer and non-integer query sizes, with/without ensemble)."""
import pytest
import torch
import torch.nn.functional as F

from tests.ifa.batchnorm import randomise_batchnorm
from ifa import IFAHead, ShapeSpec
from ifa.coords import cell_centers


def _make_coord(n):
    """The release's make_coord for one axis, float32: -1 + r + 2r * i with r = 1 / n."""
    r = 2 / (2 * n)
    return (-1 + r) + (2 * r) * torch.arange(n).float()

SHAPES = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}
IMAGE = (64, 96)  # c2 16x24, c3 8x12, c4 4x6, c5 2x3
# the stride-4 grid, 3.3x and 1.7x of the c3 grid (non-integer for every level), and smaller than c2
SIZES = [None, (26, 40), (14, 20), (5, 7)]


def _features(n=2, image=IMAGE, shapes=SHAPES, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(n, s.channels, -(-image[0] // s.stride), -(-image[1] // s.stride), generator=g)
        for k, s in shapes.items()
    }


def _head(**kw):
    torch.manual_seed(0)
    opts = dict(channels=8, mlp=(32, 16, 16))
    opts.update(kw)
    return randomise_batchnorm(IFAHead(SHAPES, 5, **opts))


def _release_style(head: IFAHead, feats: dict, size) -> tuple[torch.Tensor, torch.Tensor]:
    """The released computation written with grid_sample (nearest) and make_coord-style centres.

    sampling="release": float32 make_coord centres (queries through the release's (c + 1) / 2 * 2 - 1 round
    trip). released_ensemble_defect: the release's ensemble, written from its ifa_feat / ifa_simfpn formulas:
    the four neighbour queries are shifted by -/+ 1/h and -/+ 1/w (h, w: the *query* grid) plus 1e-6, clamped
    to +-(1 - 1e-6); rel is taken from the unshifted query; areas |rel_y rel_x| + 1e-9; only the last
    neighbour (+, +) survives, weighted by the area of (-, -) over the total. Otherwise (LIIF's ensemble, the
    correct one) the shifts are half a *level* cell.

    Also returns a (h, w) mask of the queries where LIIF's area weights are degenerate: a query exactly on
    the centre of a last row/column cell has all four areas ~0, so the 1e-9 terms make the weights equal
    (the head uses the per-axis limit there, i.e. bilinear interpolation)."""
    h, w = size
    n = next(iter(feats.values())).shape[0]
    release = head.sampling == "release"
    qy, qx = (_make_coord(h), _make_coord(w)) if release else (cell_centers(h), cell_centers(w))
    if release:
        qy, qx = ((qy + 1) / 2) * 2 - 1, ((qx + 1) / 2) * 2 - 1
    coords = torch.stack(torch.meshgrid(qy, qx, indexing="ij"), -1).view(-1, 2)  # (Q, 2), (y, x)
    contexts = []
    degenerate = torch.zeros(h * w, dtype=torch.bool)
    for level, name in enumerate(head.in_features):
        r = head.reduce[level](feats[name])
        hl, wl = r.shape[-2:]
        cy, cx = (_make_coord(hl), _make_coord(wl)) if release else (cell_centers(hl), cell_centers(wl))
        centres = torch.stack(torch.meshgrid(cy, cx, indexing="ij"), 0).expand(n, 2, hl, wl)
        # neighbour shift: half a query cell in the release's ensemble, half a level cell in LIIF's
        step_y, step_x = (1 / h, 1 / w) if head.released_ensemble_defect else (1 / hl, 1 / wl)
        if head.local_ensemble:
            shifts, eps = [(-1, -1), (-1, 1), (1, -1), (1, 1)], 1e-6
        else:
            shifts, eps = [(0, 0)], 0.0
        ctx, areas = [], []
        for vy, vx in shifts:
            c = coords.clone()
            c[:, 0] += vy * step_y + eps
            c[:, 1] += vx * step_x + eps
            c.clamp_(-1 + 1e-6, 1 - 1e-6)
            grid = c.flip(-1).view(1, 1, -1, 2).expand(n, 1, -1, 2)
            q_feat = F.grid_sample(r, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            q_centre = F.grid_sample(centres, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            rel = (coords - q_centre) * torch.tensor([hl, wl], dtype=coords.dtype)
            coord_in = coords.expand(n, -1, 2) if head.absolute_pe else rel
            ctx.append(torch.cat([head.pe[level](coord_in), q_feat], -1))
            areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        if head.local_ensemble:
            if head.released_ensemble_defect:
                total = torch.stack(areas).sum(0)
                contexts.append(ctx[-1] * (areas[0] / total)[..., None])
                continue
            total = sum(areas)
            degenerate |= (total[0] < 1e-6)
            opposite = areas[::-1]
            pairs = list(zip(ctx, opposite))
            contexts.append(sum(c * (a / total)[..., None] for c, a in pairs))
        else:
            contexts.append(ctx[0])
    x = torch.cat(contexts, -1)
    return head.mlp(x.reshape(-1, head.in_dim)).view(n, h, w, -1).permute(0, 3, 1, 2), degenerate.view(h, w)


ENSEMBLES = [(False, False, "exact"), (False, False, "release"), (True, False, "exact"), (True, True, "release")]


@pytest.mark.parametrize("ensemble,defect,sampling", ENSEMBLES)
@pytest.mark.parametrize("formulation", ["reference", "fused"])
@pytest.mark.parametrize("pe", ["sinusoidal", "learned"])
def test_matches_release_style_grid_sample(ensemble, defect, sampling, formulation, pe):
    head = _head(local_ensemble=ensemble, released_ensemble_defect=defect, sampling=sampling, pe=pe,
                 formulation=formulation).eval()
    feats = _features()
    with torch.no_grad():
        for size in [None, (26, 40), (14, 20), (15, 23)]:
            out = head(feats, size)
            ref, degenerate = _release_style(head, feats, size or (16, 24))
            assert out.shape == ref.shape
            assert degenerate.float().mean() < 0.15  # last row + column at most
            scale = ref.abs().max()
            assert (out - ref).abs()[..., ~degenerate].max() < 1e-5 * scale, size


def test_released_ensemble_is_not_the_correct_one():
    """The release's ensemble (half-query-cell shifts, last neighbour only) gives other logits than LIIF's."""
    feats = _features()
    with torch.no_grad():
        correct = _head(local_ensemble=True).eval()(feats, (26, 40))
        released = _head(local_ensemble=True, released_ensemble_defect=True, sampling="release").eval()(feats, (26, 40))
    assert (correct - released).abs().max() > 0.03 * correct.abs().max()


@pytest.mark.parametrize("ensemble", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_fused_equals_reference_eval(ensemble, size):
    head = _head(local_ensemble=ensemble, chunk_queries=60).eval()  # several bands
    feats = _features()
    with torch.no_grad():
        head.formulation = "reference"
        ref = head(feats, size)
        head.formulation = "fused"
        fused = head(feats, size)
    expected = (2, 5) + (size or (16, 24))
    assert ref.shape == fused.shape == expected
    assert ref.abs().mean() > 0.1  # not a degenerate output
    assert (fused - ref).abs().max() < 1e-4


def _train_step(formulation, dtype, size, **kw):
    feats = {k: v.to(dtype) for k, v in _features().items()}
    head = _head(formulation=formulation, **kw).to(dtype).train()
    out = head(feats, size)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    (out * weights).sum().backward()
    grads = {k: p.grad.clone() for k, p in head.named_parameters()}
    stats = {k: b.clone() for k, b in head.named_buffers()}
    return out.detach(), grads, stats


@pytest.mark.parametrize("ensemble,defect", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("size", SIZES)
def test_fused_equals_reference_train_with_gradients(ensemble, defect, size):
    """Train mode: fp32 logits within 1e-4; parameter gradients and BatchNorm running statistics equal.

    Gradients are compared in float64: in float32 a pre-activation within ~1e-6 of 0 can land on
    different sides of a ReLU in the two summation orders, which changes that element's gradient
    entirely (seen in practice on this tiny model); that is rounding, not a formulation difference."""
    kw = dict(local_ensemble=ensemble, released_ensemble_defect=defect, sampling="release" if defect else "exact")
    ref32, _, _ = _train_step("reference", torch.float32, size, **kw)
    fused32, _, _ = _train_step("fused", torch.float32, size, **kw)
    assert (fused32 - ref32).abs().max() < 1e-4
    ref, g_ref, s_ref = _train_step("reference", torch.float64, size, **kw)
    fused, g_fused, s_fused = _train_step("fused", torch.float64, size, **kw)
    assert (fused - ref).abs().max() < 1e-10
    assert g_ref.keys() == g_fused.keys()
    for k in g_ref:
        scale = g_ref[k].abs().max().clamp_min(1.0)
        assert (g_fused[k] - g_ref[k]).abs().max() / scale < 1e-10, k
    for k in s_ref:  # BatchNorm running statistics see the same pre-activations
        assert torch.allclose(s_fused[k].double(), s_ref[k].double(), atol=1e-10), k


def test_same_state_dict_both_formulations_and_switch():
    head = _head()
    sd = head.state_dict()
    other = _head(formulation="reference")
    assert sd.keys() == other.state_dict().keys()
    other.load_state_dict(sd)
    with pytest.raises(ValueError, match="formulation"):
        head.formulation = "fast"


def test_contract_attributes_and_default_size():
    head = _head(align_corners=False).eval()
    assert head.supports_query_size and head.output_stride == 4 and head.extra_loss_weights == {}
    assert head.align_corners is False
    with torch.no_grad():
        assert head(_features(n=1)).shape == (1, 5, 16, 24)
        assert head(_features(n=1), size=(1, 1)).shape == (1, 5, 1, 1)
    assert isinstance(_head().train()(_features(n=1)), torch.Tensor)


def test_released_dimensions():
    shapes = {"c2": ShapeSpec(256, 4), "c3": ShapeSpec(512, 8), "c4": ShapeSpec(1024, 16), "c5": ShapeSpec(2048, 32)}
    head = IFAHead(shapes, 19)
    assert head.in_dim == 1128 and head.pe_out == 26
    assert [l.weight.shape for l in head.mlp.linears] == [(512, 1128), (256, 512), (256, 256), (19, 256)]
    assert [s[0].weight.shape[:2] for s in head.reduce] == [(256, 256), (256, 512), (256, 1024), (256, 2048)]
    assert sum(isinstance(p, torch.nn.Parameter) for p in head.pe.parameters()) == 4  # learnable 2x12 per level


def test_bad_options():
    with pytest.raises(ValueError, match="in_features"):
        IFAHead(SHAPES, 5, in_features=("c2", "p6"))
    with pytest.raises(ValueError, match="local_ensemble"):
        IFAHead(SHAPES, 5, released_ensemble_defect=True, sampling="release")
    with pytest.raises(ValueError, match="needs sampling='release'"):
        IFAHead(SHAPES, 5, local_ensemble=True, released_ensemble_defect=True)
    with pytest.raises(ValueError, match="no release counterpart"):
        IFAHead(SHAPES, 5, local_ensemble=True, sampling="release")
    with pytest.raises(ValueError, match="sampling must be"):
        IFAHead(SHAPES, 5, sampling="float")


def test_chunking_is_invisible_and_bounded():
    head = _head().eval()
    feats = _features(n=1)
    with torch.no_grad():
        whole = head(feats, (40, 60))
        head.chunk_queries = 60  # one row per band
        assert head.band_rows((40, 60), 1) == 1
        assert torch.allclose(head(feats, (40, 60)), whole, atol=1e-6)
    head.chunk_queries = None
    head.memory_budget_mb = 1
    rows = head.band_rows((4000, 4000), 1)
    assert rows * 4000 * head.bytes_per_query() <= 2**20 or rows == 1

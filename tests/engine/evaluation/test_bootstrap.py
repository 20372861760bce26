"""Bootstrap intervals of mIoU over images (bench/engine/evaluation/bootstrap.py), against an independent computation: the same
numpy draws, each replicate summed image by image in plain Python."""
import numpy as np
import pytest

from bench.engine.evaluation.bootstrap import miou_from_sums, miou_interval, paired_difference
from bench.engine.evaluation.metrics import confusion_matrix, metrics_from_confusion


def _stats(n=25, classes=4, seed=0, quality=0.7):
    rng = np.random.default_rng(seed)
    union = rng.integers(50, 500, size=(n, classes))
    union[rng.random((n, classes)) < 0.2] = 0  # classes absent from some images
    inter = np.floor(union * np.clip(rng.normal(quality, 0.15, size=(n, classes)), 0, 1)).astype(np.int64)
    return inter, union


def _independent(stats_list, level, replicates, seed):
    """Percentile interval written out: per replicate, per seed, sum the drawn images' rows one by one."""
    n = stats_list[0][0].shape[0]
    draws = np.random.default_rng(seed).integers(0, n, size=(replicates, n))
    values = []
    for idx in draws:
        per_seed = []
        for inter, union in stats_list:
            i_sum = [0] * inter.shape[1]
            u_sum = [0] * inter.shape[1]
            for k in idx:
                for c in range(inter.shape[1]):
                    i_sum[c] += int(inter[k, c])
                    u_sum[c] += int(union[k, c])
            ious = [i / u for i, u in zip(i_sum, u_sum) if u > 0]
            per_seed.append(100.0 * sum(ious) / len(ious))
        values.append(sum(per_seed) / len(per_seed))
    alpha = (100 - level) / 2
    return tuple(np.percentile(values, [alpha, 100 - alpha]))


def test_miou_from_sums_equals_the_metric_on_a_confusion_matrix():
    g = np.random.default_rng(3)
    pred = g.integers(0, 5, size=(40, 60))
    label = np.where(g.random((40, 60)) < 0.7, pred, g.integers(0, 5, size=(40, 60)))
    import torch

    conf = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(label), 5, 255).numpy()
    diag = conf.diagonal()
    assert miou_from_sums(diag, conf.sum(0) + conf.sum(1) - diag) == pytest.approx(
        metrics_from_confusion(conf)["miou"], abs=1e-12)


@pytest.mark.parametrize("level", [95.0, 80.0])
def test_interval_equals_independent_resampling(level):
    stats = _stats()
    ci = miou_interval([stats], level=level, replicates=300, seed=7)
    low, high = _independent([stats], level, 300, 7)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-9)
    assert ci.low < ci.estimate < ci.high
    assert ci.estimate == pytest.approx(miou_from_sums(stats[0].sum(0), stats[1].sum(0)))


def test_seeds_share_the_draws_and_are_averaged():
    a, b = _stats(seed=1), _stats(seed=2, quality=0.6)
    ci = miou_interval([a, b], replicates=200, seed=3)
    assert (ci.low, ci.high) == pytest.approx(_independent([a, b], 95.0, 200, 3), abs=1e-9)


def test_interval_shrinks_with_more_images_and_is_reproducible():
    small, large = _stats(n=10), _stats(n=400)
    w_small = miou_interval([small]).high - miou_interval([small]).low
    w_large = miou_interval([large]).high - miou_interval([large]).low
    assert w_large < w_small / 3
    assert miou_interval([small], seed=5) == miou_interval([small], seed=5)


def test_paired_difference():
    a = _stats(n=60, seed=4, quality=0.75)
    same = paired_difference([a], [a], replicates=200)
    assert same.estimate == 0 and same.low == 0 and same.high == 0  # identical models: no difference, no noise
    better = (np.minimum(a[0] + (a[1] - a[0]) // 2, a[1]), a[1])  # half of every error fixed
    d = paired_difference([better], [a], replicates=500)
    assert d.low > 0 and not d.contains(0.0)
    # the paired interval is narrower than the two unpaired intervals would suggest
    wa = miou_interval([a]).high - miou_interval([a]).low
    assert d.high - d.low < wa


def test_mismatched_image_sets_are_refused():
    with pytest.raises(ValueError, match="same images"):
        miou_interval([_stats(n=10), _stats(n=11)])

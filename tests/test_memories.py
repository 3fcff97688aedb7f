"""Memories and losses of the unsupervised methods against hand-computed batches and slow loops."""
import math

import pytest
import torch
import torch.nn.functional as F

from trainers.memories import (CentralFeatureMemory, ClusterMemory, HybridMemory,
                               InstanceHybridMemory, cluster_centroids, image_loss,
                               momentum_update, patch_loss)

# Centroids e1, e2 in 2-D; three batch features: two of cluster 0 (cosines 0.6 and 1 with e1)
# and one of cluster 1.
CENTROIDS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
BATCH = torch.tensor([[0.6, 0.8], [2.0, 0.0], [0.0, 3.0]])  # unit after normalising: the norm
LABELS = torch.tensor([0, 0, 1])
EPS32 = torch.finfo(torch.float32).eps
# (torch.testing.assert_close below keeps its float32 defaults, rtol 1.3e-6 and atol 1e-5: the
# computations it checks are a few operations on unit vectors, O(1) values off by a few eps32.)


def unit(*v):
    v = torch.tensor(v)
    return v / v.norm()


def slow_update(memory, features, labels, momentum, mode):
    """One move per label present, written as a loop."""
    memory = memory.clone()
    features = F.normalize(features, dim=1)
    for label in sorted(set(labels.tolist())):
        rows = features[labels == label]
        if mode == "mean":
            target = rows.mean(0)
        else:
            target = rows[int(torch.argmin(rows @ memory[label]))]
        memory[label] = F.normalize(momentum * memory[label] + (1 - momentum) * target, dim=0)
    return memory


# ---------------------------------------------------------------- Cluster Contrast

def test_cluster_centroids_are_unit_means_without_outliers():
    features = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, 5.0], [0.0, 4.0]])
    got = cluster_centroids(features, torch.tensor([0, 0, -1, 1]))
    torch.testing.assert_close(got, torch.stack([unit(1.0, 1.0), unit(0.0, 1.0)]))


def test_mean_update_by_hand():
    memory = ClusterMemory(CENTROIDS, momentum=0.5, mode="mean")
    memory.update(BATCH, LABELS)
    # cluster 0: mean of (0.6, 0.8) and (1, 0) is (0.8, 0.4); half of it plus half of e1
    torch.testing.assert_close(memory.centroids, torch.stack([unit(0.9, 0.2), unit(0.0, 1.0)]))


def test_hard_update_by_hand():
    memory = ClusterMemory(CENTROIDS, momentum=0.5, mode="hard")
    memory.update(BATCH, LABELS)
    # cluster 0's hardest positive is (0.6, 0.8) (cosine 0.6): half of it plus half of e1
    torch.testing.assert_close(memory.centroids, torch.stack([unit(0.8, 0.4), unit(0.0, 1.0)]))


def test_hard_update_takes_the_earliest_of_tied_features():
    memory = torch.tensor([[1.0, 0.0]])
    features = torch.tensor([[0.6, 0.8], [0.6, -0.8], [1.0, 0.0]])
    got = momentum_update(memory, features, torch.tensor([0, 0, 0]), 0.5, "hard")
    torch.testing.assert_close(got, unit(0.8, 0.4)[None])


@pytest.mark.parametrize("mode", ["mean", "hard"])
def test_update_matches_loop_and_ignores_batch_order(mode):
    gen = torch.Generator().manual_seed(0)
    memory = F.normalize(torch.randn(6, 5, generator=gen), dim=1)
    features = torch.randn(16, 5, generator=gen)
    labels = torch.randint(0, 4, (16,), generator=gen)  # clusters 4, 5 absent: unchanged
    got = momentum_update(memory, F.normalize(features, dim=1), labels, 0.2, mode)
    torch.testing.assert_close(got, slow_update(memory, features, labels, 0.2, mode))
    torch.testing.assert_close(got[4:], memory[4:])
    perm = torch.randperm(16, generator=gen)
    if mode == "mean":  # "hard" depends on order only through exact ties
        torch.testing.assert_close(
            momentum_update(memory, F.normalize(features[perm], dim=1), labels[perm], 0.2, mode), got)


def test_cluster_loss_by_hand():
    memory = ClusterMemory(CENTROIDS, temperature=0.05)
    x = torch.tensor([[0.6, 0.8]])
    want = -math.log(math.exp(0.6 / 0.05) / (math.exp(0.6 / 0.05) + math.exp(0.8 / 0.05)))
    # float32 logits up to 0.8 / 0.05 = 16, a few roundings each (log-softmax is 1-Lipschitz in them)
    logit_tol = 8 * EPS32 * 16
    assert memory.loss(x, torch.tensor([0])).item() == pytest.approx(want, abs=logit_tol)
    # label smoothing 0.1 over 2 classes: targets 0.95 / 0.05
    smooth = ClusterMemory(CENTROIDS, temperature=0.05, label_smoothing=0.1)
    log_p = torch.log_softmax(torch.tensor([0.6, 0.8]) / 0.05, 0)
    want = -(0.95 * log_p[0] + 0.05 * log_p[1]).item()
    assert smooth.loss(x, torch.tensor([0])).item() == pytest.approx(want, abs=logit_tol)


def test_forward_reads_before_it_updates_and_backpropagates():
    memory = ClusterMemory(CENTROIDS, momentum=0.5)
    features = BATCH.clone().requires_grad_()
    loss = memory(features, LABELS)
    loss.backward()  # the update replaced the buffer; the saved centroids are intact
    reference = BATCH.clone().requires_grad_()
    want = F.cross_entropy(F.normalize(reference, dim=1) @ CENTROIDS.T / 0.05, LABELS)
    want.backward()
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(features.grad, reference.grad)
    assert not torch.equal(memory.centroids, CENTROIDS)
    assert "centroids" in dict(memory.named_buffers())


# ---------------------------------------------------------------- HHCL

def test_hybrid_loss_honours_hard_weight():
    memory = HybridMemory(CENTROIDS, momentum=0.5, hard_weight=0.8)
    memory.update(BATCH, LABELS)  # now the two parts differ
    x, y = torch.tensor([[0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 1])

    def ce(centroids):
        return F.cross_entropy(F.normalize(x, dim=1) @ centroids.T / 0.05, y)

    hard = torch.stack([unit(0.8, 0.4), unit(0.0, 1.0)])
    mean = torch.stack([unit(0.9, 0.2), unit(0.0, 1.0)])
    torch.testing.assert_close(memory.hard.centroids, hard)
    torch.testing.assert_close(memory.mean.centroids, mean)
    torch.testing.assert_close(memory.loss(x, y), 0.8 * ce(hard) + 0.2 * ce(mean))


def test_instance_hard_logits_by_hand():
    instances = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],     # slot 0 of clusters 0, 1
                              [[0.6, 0.8], [0.8, 0.6]]])    # slot 1
    memory = InstanceHybridMemory(CENTROIDS, instances, temperature=0.5)
    x = torch.tensor([[1.0, 0.0]])
    # own cluster 0: least similar instance, cos 0.6; cluster 1: most similar, cos 0.8
    torch.testing.assert_close(memory.hard_logits(x, torch.tensor([0])), torch.tensor([[1.2, 1.6]]))
    # own cluster 1: least similar 0; cluster 0: most similar 1
    torch.testing.assert_close(memory.hard_logits(x, torch.tensor([1])), torch.tensor([[2.0, 0.0]]))


def test_instance_loss_weights_hard_part():
    gen = torch.Generator().manual_seed(1)
    centroids = torch.randn(3, 4, generator=gen)
    memory = InstanceHybridMemory(centroids, torch.randn(2, 3, 4, generator=gen), hard_weight=0.3)
    x, y = torch.randn(5, 4, generator=gen), torch.tensor([0, 1, 2, 2, 0])
    hard = F.cross_entropy(memory.hard_logits(x, y), y)
    mean = F.cross_entropy(F.normalize(x, dim=1) @ F.normalize(centroids, dim=1).T / 0.05, y)
    torch.testing.assert_close(memory.loss(x, y), 0.3 * hard + 0.7 * mean)


def test_instance_update_fills_slots_in_batch_order():
    gen = torch.Generator().manual_seed(2)
    instances = F.normalize(torch.randn(3, 4, 5, generator=gen), dim=2)
    memory = InstanceHybridMemory(torch.randn(4, 5, generator=gen), instances, momentum=0.5)
    features = torch.randn(9, 5, generator=gen)
    labels = torch.tensor([2, 0, 2, 2, 0, 2, 1, 3, 3])  # cluster 2 has 4 > K = 3 features
    before = memory.centroid.centroids.clone()
    memory.update(features, labels)
    want = instances.clone()
    for label in range(4):
        rows = F.normalize(features[labels == label], dim=1)[:3]
        want[:len(rows), label] = rows
    torch.testing.assert_close(memory.instances, want)
    torch.testing.assert_close(memory.centroid.centroids,
                               slow_update(before, features, labels, 0.5, "mean"))


def test_instance_memory_from_clusters_draws_members():
    features = torch.arange(14.0).view(7, 2)
    labels = torch.tensor([1, 0, -1, 1, 0, 1, 1])
    gen = torch.Generator().manual_seed(0)
    memory = InstanceHybridMemory.from_clusters(features, labels, num_instances=5, generator=gen)
    assert memory.instances.shape == (5, 2, 2)
    members = {c: F.normalize(features[labels == c], dim=1) for c in (0, 1)}
    for k in range(5):
        for c in (0, 1):
            # the same rows normalised: equal up to the normalisation's few roundings
            assert (memory.instances[k, c] - members[c]).abs().sum(1).min() < 4 * EPS32


# ---------------------------------------------------------------- Central Feature Learning

def test_pid_steps_by_hand():
    memory = CentralFeatureMemory(torch.zeros(2, 1), kp=0.5, ki=0.1, kd=0.2)
    one = torch.tensor([[1.0]])
    memory.update(torch.tensor([0]), one)
    # e = 1, I = 1: c = 0 + 0.5 + 0.1 + 0.2 * (1 - 0) = 0.8
    # (float32: a handful of roundings of values <= 1.2, and the decimal itself rounded)
    assert memory.central[0].item() == pytest.approx(0.8, abs=8 * EPS32)
    memory.update(torch.tensor([0]), one)
    # e = 0.2, I = 1.2: c = 0.8 + 0.1 + 0.12 + 0.2 * (0.2 - 1) = 0.86
    assert memory.central[0].item() == pytest.approx(0.86, abs=8 * EPS32)
    assert memory.central[1].item() == 0.0  # not in the batch


def test_proportional_gain_alone_is_a_momentum_update_and_views_average():
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(4, 3, 2, generator=gen)
    memory = CentralFeatureMemory(start, kp=0.1)
    views = torch.randn(4, 3, 2, generator=gen)
    indexes = torch.tensor([2, 0, 2, 0])  # two views each of images 2 and 0
    memory.update(indexes, views)
    want = start.clone()
    for i in (0, 2):
        want[i] = 0.9 * start[i] + 0.1 * views[indexes == i].mean(0)
    torch.testing.assert_close(memory.central, want)


def test_pid_matches_loop_over_many_steps():
    gen = torch.Generator().manual_seed(4)
    start = torch.randn(5, 3, generator=gen)
    memory = CentralFeatureMemory(start, kp=0.2, ki=0.05, kd=0.1)
    c, integral, last = start.clone(), torch.zeros(5, 3), torch.zeros(5, 3)
    for _ in range(6):
        indexes = torch.randperm(5, generator=gen)[:3]
        x = torch.randn(3, 3, generator=gen)
        memory.update(indexes, x)
        for i, row in zip(indexes.tolist(), x):
            e = row - c[i]
            integral[i] += e
            c[i] = c[i] + 0.2 * e + 0.05 * integral[i] + 0.1 * (e - last[i])
            last[i] = e
    torch.testing.assert_close(memory.central, c)


def slow_patch_loss(features, indexes, central, scale, k):
    total = 0.0
    for b in range(features.shape[0]):
        for p in range(features.shape[1]):
            d = sorted(((features[b, p] - central[j, p]) ** 2).sum().item()
                       for j in range(central.shape[0]) if j != indexes[b])
            near = sum(math.exp(-scale * v) for v in d[:k])
            total += -math.log(near / sum(math.exp(-scale * v) for v in d))
    return total / (features.shape[0] * features.shape[1])


def test_patch_loss_matches_loop():
    gen = torch.Generator().manual_seed(5)
    central = F.normalize(torch.randn(12, 3, 4, generator=gen), dim=2)
    indexes = torch.tensor([3, 7, 0, 11])
    features = F.normalize(central[indexes] + 0.3 * torch.randn(4, 3, 4, generator=gen), dim=2)
    features.requires_grad_()
    loss = patch_loss(features, indexes, central, scale=5.0, k=4)
    want = slow_patch_loss(features.detach(), indexes, central, 5.0, 4)
    # The loss (~0.02) is the difference of two log-sum-exps of ~log 11 each: their float32
    # round-off, not the small result, sets the scale (log roundings, and ~sqrt(n) roundings of the
    # n = 11 exponentials summed). The squared distances (<= 4, from 4-term dot products and norms)
    # carry ~16 eps32, which scale 5 turns into logit errors that matter only as far as the
    # far terms weigh, i.e. in proportion to the loss.
    n = central.shape[0] - 1
    tol = EPS32 * (2 * math.log(n) + 2 * n ** 0.5) + 2 * 5.0 * 16 * EPS32 * want
    assert loss.item() == pytest.approx(want, abs=tol)
    loss.backward()
    assert torch.isfinite(features.grad).all()


def slow_image_loss(features, indexes, central, margin, max_rank, nearest):
    images = sorted(set(indexes.tolist()))
    centres = central[images]
    total = 0.0
    for a in range(features.shape[0]):
        own = images.index(int(indexes[a]))
        dist = [(features[a] - c).norm().item() for c in centres]
        others = sorted((d, j) for j, d in enumerate(dist) if j != own)
        negative = 0.0
        for d, j in others[:max_rank]:  # cycle ranking: is the anchor's image near j?
            near_j = sorted(range(len(images)), key=lambda i: (centres[j] - centres[i]).norm())
            if own not in near_j[:nearest]:
                negative = d
                break
        total += max(0.0, margin + dist[own] - negative)
    return total / features.shape[0]


@pytest.mark.parametrize("max_rank,nearest", [(15, 3), (2, 3), (15, 1), (1, 6)])
def test_image_loss_matches_loop(max_rank, nearest):
    gen = torch.Generator().manual_seed(6)
    # pairs of images close together, so some nearest negatives are not trusted
    base = torch.randn(3, 8, generator=gen)
    central = torch.cat([base, base + 0.2 * torch.randn(3, 8, generator=gen)])  # images 0..5
    central = torch.cat([central, torch.randn(2, 8, generator=gen)])  # 6, 7 not in the batch
    indexes = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    features = central[indexes] + 0.3 * torch.randn(12, 8, generator=gen)
    got = image_loss(features, indexes, central, margin=2.0, max_rank=max_rank, nearest=nearest)
    want = slow_image_loss(features, indexes, central, 2.0, max_rank, nearest)
    # float32 Euclidean distances of 8-vectors, each off by ~10 eps32 of the largest; a term is
    # margin + pos - neg, two of them. The ranks the loss picks its negatives by are no closer than
    # twice that (checked), so both sides pick the same ones on any CPU.
    dist = torch.cdist(features, central[:6])
    d_tol = 10 * EPS32 * dist.max().item()
    assert dist.sort(1).values.diff(1).min() > 2 * d_tol
    assert torch.cdist(central[:6], central[:6]).sort(1).values.diff(1).min() > 2 * d_tol
    assert got.item() == pytest.approx(want, abs=2 * d_tol)
    trust_all = image_loss(features, indexes, central, margin=2.0, max_rank=15, nearest=1)
    assert (got != trust_all) == (nearest > 1)  # the data make untrusted nearest negatives


def test_updates_accept_half_precision_features():
    """Under autocast the batch features are bfloat16; the memories stay float32."""
    features, labels = BATCH.bfloat16(), LABELS
    memories = [ClusterMemory(CENTROIDS), HybridMemory(CENTROIDS),
                InstanceHybridMemory(CENTROIDS, CENTROIDS[None].repeat(2, 1, 1))]
    for memory in memories:
        memory.update(features, labels)
        assert all(b.dtype == torch.float32 for b in memory.buffers())
    central = CentralFeatureMemory(torch.zeros(3, 2), kp=0.5)
    central.update(labels, features)
    assert central.central.dtype == torch.float32

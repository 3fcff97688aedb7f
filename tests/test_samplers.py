from collections import Counter
from itertools import islice

import numpy as np
import pytest

from reid_data.samplers import BatchStream, pk_batches, shuffled_batches


def world(seed=0, ids=20, cams=4):
    rng = np.random.default_rng(seed)
    labels, camids = [], []
    for pid in range(ids):
        n = int(rng.integers(1, 15))  # some identities have fewer images than K
        labels += [pid] * n
        camids += rng.integers(0, cams, n).tolist()
    labels += [-1] * 5  # unclustered images (pseudo-label -1) are never sampled
    camids += [0] * 5
    return labels, camids


@pytest.mark.parametrize("camera_aware", [False, True])
def test_pk_batches_are_p_identities_times_k(camera_aware):
    labels, camids = world()
    batches = pk_batches(labels, camids, 16, 4, np.random.default_rng(1), camera_aware)
    assert len(batches) > 5
    for batch in batches:
        assert len(batch) == 16
        counts = Counter(labels[i] for i in batch)
        assert len(counts) == 4 and set(counts.values()) == {4}
        assert -1 not in counts


def test_every_identity_is_used_each_epoch():
    labels, camids = world()
    used = Counter()
    for batch in pk_batches(labels, camids, 8, 4, np.random.default_rng(2)):
        used.update(labels[i] for i in batch)
    assert set(used) <= set(range(20))
    assert len(used) >= 18  # all but at most P-1 leftover identities


def test_camera_aware_groups_span_more_cameras():
    labels, camids = world(seed=3, ids=40, cams=6)

    def mean_cams(camera_aware):
        spans = []
        for seed in range(5):
            for batch in pk_batches(labels, camids, 16, 4, np.random.default_rng(seed), camera_aware):
                for g in range(0, 16, 4):
                    spans.append(len({camids[i] for i in batch[g:g + 4]}))
        return np.mean(spans)

    assert mean_cams(True) > mean_cams(False) + 0.3
    # with camera awareness an identity's first group covers min(K, its cameras) cameras
    seen = set()
    for batch in pk_batches(labels, camids, 16, 4, np.random.default_rng(9), True):
        for g in range(0, 16, 4):
            group = batch[g:g + 4]
            label = labels[group[0]]
            own = {camids[i] for i, l in enumerate(labels) if l == label}
            if label not in seen and len(set(group)) == 4:
                assert len({camids[i] for i in group}) == min(4, len(own))
            seen.add(label)


def test_pk_errors():
    with pytest.raises(ValueError, match="multiple"):
        pk_batches([0, 1], [0, 0], 10, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="identities"):
        pk_batches([0, 0, 1, 1], [0, 0, 0, 0], 12, 4, np.random.default_rng(0))


def test_shuffled_batches_drop_last():
    batches = shuffled_batches(10, 4, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(sum(batches, []))) == 8


def test_stream_started_anywhere_equals_the_uninterrupted_stream():
    labels, camids = world()
    fn = lambda rng: pk_batches(labels, camids, 8, 4, rng)
    full = list(islice(BatchStream(fn, seed=7), 100))
    for start in (0, 1, 13, 57, 99):
        assert list(islice(BatchStream(fn, seed=7, start=start), 100 - start)) == full[start:]
    assert list(islice(BatchStream(fn, seed=8), 10)) != full[:10]

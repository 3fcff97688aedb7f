"""Rank lists: the ranking the figure draws (reid_eval.ranking) is the one evaluate_rank scores, and
visual_tools/rank_list.py draws it, on a tiny problem with ties and junk and on a tiny teacher."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models import build_reid_net
from reid_data import DatasetError, build_dataset
from reid_data.records import Sample
from reid_eval.evaluate_checkpoint import distances
from reid_eval.evaluator import QueryGallery
from reid_eval.metrics import evaluate_rank
from runtime.checkpoint import load_network
from runs import run_dir
from visual_tools import rank_list


@pytest.fixture
def tied_problem() -> QueryGallery:
    """Integer distances (many ties), junk, same-camera entries and a query whose identity the
    gallery lacks."""
    rng = np.random.default_rng(0)
    num_q, num_g = 16, 40
    g_pids = rng.choice([-1, 1, 2, 3, 4], num_g)
    q_pids = np.append(rng.choice([1, 2, 3, 4], num_q - 1), 9)
    return QueryGallery(rng.integers(0, 4, (num_q, num_g)).astype(np.float32), q_pids, g_pids,
                        rng.integers(0, 3, num_q), rng.integers(0, 3, num_g))


def test_the_figure_ranks_as_evaluate_rank_scores(tied_problem):
    qg = tied_problem
    num_q, num_g = qg.distmat.shape
    rankings = rank_list.rank_lists(qg, range(num_q))
    skipped = tie_decided = 0
    for q, ranking in enumerate(rankings):
        # the order spelt out independently: (distance, gallery index), removed entries flagged
        order = sorted(range(num_g), key=lambda g: (qg.distmat[q, g], g))
        removed = [qg.g_pids[g] == -1 or (qg.g_pids[g] == qg.q_pids[q] and qg.g_camids[g] == qg.q_camids[q])
                   for g in order]
        assert ranking.index.tolist() == order and ranking.kept.tolist() == [not r for r in removed]
        assert ranking.distance.tolist() == qg.distmat[q, order].tolist()
        assert ranking.match.tolist() == [not r and qg.g_pids[g] == qg.q_pids[q] for g, r in zip(order, removed)]
        assert ranking.rank[ranking.kept].tolist() == list(range(1, num_g - sum(removed) + 1))
        one = (qg.distmat[q:q + 1], qg.q_pids[q:q + 1], qg.g_pids, qg.q_camids[q:q + 1], qg.g_camids)
        if not ranking.match.any():
            with pytest.raises(ValueError, match="no query identity appears"):
                evaluate_rank(*one)  # the metric skips this query
            skipped += 1
            continue
        # the metric's per-query scores recomputed from the ranks of the true matches in the list
        ranks = ranking.rank[ranking.match].astype(float)
        scores = evaluate_rank(*one, max_rank=num_g)
        assert scores["mAP"] == pytest.approx(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        assert scores["mINP"] == pytest.approx(len(ranks) / ranks[-1])
        first = int(ranks[0])
        assert scores["cmc"][first - 1] == 1 and (first == 1 or scores["cmc"][first - 2] == 0)
        # a tie between a match and a wrong entry that gallery order decides
        d = ranking.distance[ranking.kept]
        tie_decided += any(d[i] == d[i + 1] and ranking.match[ranking.kept][i] != ranking.match[ranking.kept][i + 1]
                           for i in range(len(d) - 1))
    assert skipped >= 1 and tie_decided >= 3  # the problem exercises both


def test_the_head_ends_at_the_top_th_kept_entry(tied_problem):
    ranking = rank_list.rank_lists(tied_problem, [0])[0]
    head = ranking.head(5)
    assert head.kept.sum() == 5 and head.kept[-1] and head.rank[-1] == 5
    assert head.index.tolist() == ranking.index[:len(head.index)].tolist()
    assert len(ranking.head(10_000).index) == len(ranking.index)


def test_queries_by_seed_or_by_name():
    query = [Sample(f"/q/{i:04d}_c1.jpg", i, 0) for i in range(20)]
    chosen = rank_list.choose_queries(query, 5, None, seed=3)
    assert chosen == sorted(chosen) and len(set(chosen)) == 5 and chosen == rank_list.choose_queries(query, 5, None, 3)
    assert rank_list.choose_queries(query, 50, None, 0) == list(range(20))
    assert rank_list.choose_queries(query, 8, ["0007_c1.jpg", "/q/0002_c1.jpg"], 0) == [7, 2]
    with pytest.raises(DatasetError, match=r"query split: 2 \(nope\.jpg, other\.jpg\)"):
        rank_list.choose_queries(query, 8, ["nope.jpg", "0001_c1.jpg", "other.jpg"], 0)


def test_the_tool_draws_the_ranking_of_a_checkpoint(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model.backbone=resnet18")
    data = build_dataset("toy", cfg.data.root)
    torch.manual_seed(0)
    net = build_reid_net(cfg.model, data.num_train_pids).eval()
    checkpoint = run_dir(cfg) / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"trainer": "teacher", "config": cfg.to_dict(), "modules": {"model": net.state_dict()},
                "iteration": 7}, checkpoint)
    written = rank_list.main(["--checkpoint", str(checkpoint), "--queries", "10", "--top", "3", "--device", "cpu",
                              "--output", str(tmp_path / "ranks")])
    assert [p.name for p in written] == ["page_1.png", "page_2.png"]  # 8 queries a page

    # the frame colour of every cell of page 1 against the ranking computed here
    qg = distances(load_network(checkpoint, device="cpu"))
    queries = rank_list.choose_queries(data.query, 10, None, 0)[:rank_list.PER_PAGE]
    page = np.asarray(Image.open(written[0]).convert("RGB"))
    h, w = cfg.data.height, cfg.data.width
    cell_w, cell_h = w + 2 * rank_list.FRAME, h + 2 * rank_list.FRAME + 2 * rank_list.LINE + rank_list.PAD
    top = 2 * rank_list.LINE + 2 * rank_list.PAD
    for row, q in enumerate(queries):
        order = sorted(range(len(qg.g_pids)), key=lambda g: (qg.distmat[q, g], g))
        expected = [rank_list.QUERY]
        for g in order:
            junk, same = qg.g_pids[g] == -1, qg.g_pids[g] == qg.q_pids[q] and qg.g_camids[g] == qg.q_camids[q]
            expected.append(rank_list.EXCLUDED if junk or same else
                            rank_list.MATCH if qg.g_pids[g] == qg.q_pids[q] else rank_list.WRONG)
            if sum(c in (rank_list.MATCH, rank_list.WRONG) for c in expected) == 3:
                break
        y = top + row * (cell_h + rank_list.PAD)
        drawn = [tuple(page[y + 1, rank_list.PAD + c * (cell_w + rank_list.PAD) + (rank_list.GAP if c else 0) + 1])
                 for c in range(len(expected))]
        assert drawn == expected, row

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir(cfg))).Reload()
    assert set(events.Tags()["images"]) == {"rank_list/page_1", "rank_list/page_2"}
    assert events.Images("rank_list/page_1")[0].step == 7

"""Evaluation kernels: metrics on fixed cases, splits and scorers against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from eges.errors import ConfigError
from eges.evaluation.metrics import hits_and_recall, rank_auc
from eges.evaluation.score import Pairs, score, summary
from eges.evaluation.scorers import CosineScorer, PopularityScorer, cooccurrence_matrix
from eges.evaluation.splits import (
    holdout_mask,
    parse_cut_time,
    sample_non_edges,
    segments_without,
    undirected_holdout,
)


def test_rank_auc_of_nothing_is_nan():
    assert np.isnan(rank_auc(np.array([]), np.array([1.0])))


def test_hits_and_recall_fixed_case():
    neighbours = np.array([[5, 6, 7], [8, -1, -1]])
    # query 0 -> 6 (twice), 0 -> 9 (miss); query 1 -> 8
    query_of_pair = np.array([0, 0, 0, 1])
    target = np.array([6, 6, 9, 8])
    out = hits_and_recall(neighbours, query_of_pair, target, [1, 2])
    assert out[1] == (0.25, 0.5)  # only 1 -> 8 is a hit at 1; recall: query 0 0/2, query 1 1/1
    assert out[2] == (0.75, 0.75)  # 0 -> 6 counts twice; recall: query 0 1/2, query 1 1/1
    with pytest.raises(ValueError, match="larger than the neighbour lists"):
        hits_and_recall(neighbours, query_of_pair, target, [4])


def test_score_counts_unscored_pairs_as_misses():
    class Half:
        name = "half"

        def pairs(self, a, b):
            return np.where(a % 2 == 0, b.astype(float), np.nan)

    pairs = Pairs(np.array([0, 1]), np.array([5, 5]), np.array([0, 1]), np.array([1, 1]))
    rows = score("p", Half(), "method", pairs)
    assert rows[0]["coverage"] == 0.5
    # positives (5, -inf) vs negatives (1, -inf): 5 beats both (2), -inf ties -inf (0.5), loses to 1 (0)
    assert rows[0]["value"] == pytest.approx(2.5 / 4)
    assert summary(rows) == {"half": {"auc": 0.625, "coverage": 0.5}}


def test_holdout_mask_takes_the_share():
    mask = holdout_mask(300, 1 / 3, np.random.default_rng(0))
    assert mask.sum() == 100


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=40), st.integers(0, 100))
def test_undirected_holdout_keeps_both_directions_together(pairs, seed):
    edges = {(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}
    src, dst = (np.array(x) for x in zip(*sorted(edges)))
    held = undirected_holdout(src, dst, 0.5, np.random.default_rng(seed))
    chosen = {(a, b) for a, b, h in zip(src, dst, held) if h}
    assert all((b, a) in chosen for a, b in chosen)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(0, 14)), max_size=60), st.integers(0, 1000))
def test_sampled_non_edges_are_distinct_pairs_with_no_edge(pairs, seed):
    src = np.array([a for a, _ in pairs], dtype=np.int64)
    dst = np.array([b for _, b in pairs], dtype=np.int64)
    nodes = np.arange(15)
    a, b = sample_non_edges(src, dst, nodes, 20, np.random.default_rng(seed))
    edges = set(pairs) | {(y, x) for x, y in pairs}
    assert len(a) == 20
    assert all(x != y and (x, y) not in edges for x, y in zip(a, b))
    assert len(set(zip(a, b))) == 20


def test_sample_non_edges_on_a_complete_graph_is_an_error():
    src, dst = np.array([0, 1, 0, 2, 1, 2]), np.array([1, 0, 2, 0, 2, 1])
    with pytest.raises(ValueError, match="too dense"):
        sample_non_edges(src, dst, np.arange(3), 1, np.random.default_rng(0))


def test_segments_are_cut_exactly_at_held_out_transitions():
    # two sessions: 1 2 3 4 | 5 6 ; hold out 2->3 and 5->6
    start = np.array([1, 0, 0, 0, 1, 0], dtype=bool)
    item = np.array([1, 2, 3, 4, 5, 6])
    prev = np.array([-1, 1, 2, 3, -1, 5])
    held = np.array([2 * 10 + 3, 5 * 10 + 6])
    assert segments_without(start, prev, item, held, 10).tolist() == [0, 0, 1, 1, 2, 3]


def test_parse_cut_time():
    assert parse_cut_time("") is None
    assert parse_cut_time("1511539200") == 1_511_539_200_000
    assert parse_cut_time("2017-11-25") == 1_511_568_000_000
    assert parse_cut_time("2017-11-25T01:00:00+01:00") == 1_511_568_000_000
    with pytest.raises(ConfigError, match="evaluate.cut_time"):
        parse_cut_time("yesterday")


def brute_top_k(matrix, has, queries, k):
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    out = []
    for q in queries:
        if not has[q]:
            out.append([-1] * k)
            continue
        s = unit @ unit[q]
        order = [i for i in np.argsort(-s, kind="stable") if has[i] and i != q][:k]
        out.append(order + [-1] * (k - len(order)))
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 30), st.integers(1, 6), st.integers(0, 10_000))
def test_cosine_top_k_matches_brute_force(n, k, seed):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, 4)).astype(np.float32)
    has = rng.random(n) < 0.8
    queries = rng.choice(n, size=min(n, 5), replace=False)
    got = CosineScorer("m", matrix, has).top_k(queries, k, block=2)
    want = brute_top_k(matrix, has, queries, k)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    for q, g, w in zip(queries, got, want):  # equal up to ties: compare the scores
        assert (g >= 0).sum() == (w >= 0).sum()
        np.testing.assert_allclose(unit[g[g >= 0]] @ unit[q], unit[w[w >= 0]] @ unit[q], atol=1e-5)


def test_sparse_cosine_is_cooccurrence_over_sessions():
    # sessions: {0,1}, {0,1,2}, {2}
    mat = cooccurrence_matrix(np.array([0, 0, 1, 1, 1, 1, 2]), np.array([0, 1, 0, 1, 2, 2, 2]), 4)
    scorer = CosineScorer("co", mat, np.array([True, True, True, False]))
    got = scorer.pairs(np.array([0, 0, 2]), np.array([1, 2, 3]))
    assert got[0] == pytest.approx(1.0)  # both in the same two sessions
    assert got[1] == pytest.approx(1 / np.sqrt(2 * 2))  # one shared session, two each
    assert np.isnan(got[2])  # item 3 never occurs
    top = scorer.top_k(np.array([2]), 3)[0]
    assert sorted(top[:2]) == [0, 1] and top[2] == -1  # 0 and 1 tie; item 3 is unknown
    assert sp.issparse(scorer.matrix)


def test_popularity_lists_the_most_popular_but_never_the_query():
    scorer = PopularityScorer(np.array([5, 9, 0, 7]))
    assert scorer.top_k(np.array([1, 2]), 2).tolist() == [[3, 0], [1, 3]]
    assert scorer.pairs(np.array([0]), np.array([3])).tolist() == [7.0]


@pytest.mark.parametrize("backend", ["auto", "gensim"])
def test_item2vec_trains_with_the_trainer_bge_uses(monkeypatch, backend):
    """The item2vec baseline trains on the same trainer as the methods it is compared with (the native one unless
    train.backend picks gensim, the reference), so a comparison measures sessions against walks, not trainers."""
    from eges.config import TrainConfig
    from eges.evaluation.scorers import item2vec_vectors
    from eges.train import gensim_ref, stream

    used = []
    for module, name in ((gensim_ref, "train_bge"), (stream, "native_skipgram")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: used.append(_name) or _real(*a, **k))
    rng = np.random.default_rng(0)
    item = rng.integers(0, 6, 300)
    starts = np.arange(0, 301, 10)
    matrix, has = item2vec_vectors(item, starts, 8, TrainConfig(dimension=4, epochs=1, threads=1, backend=backend))
    assert used == (["native_skipgram"] if backend == "auto" else ["train_bge"])
    assert matrix.shape == (8, 4) and has[:6].all() and not has[6:].any()


def _planted_sessions(rng, n_topics=4, per_topic=12, sessions=400, length=8):
    """Sessions that wander inside one topic each, the popular items spread over all topics: (item, follows)."""
    topic_of = np.repeat(np.arange(n_topics), per_topic)
    items = np.concatenate([rng.choice(np.flatnonzero(topic_of == rng.integers(n_topics)), size=length)
                            for _ in range(sessions)])
    follows = np.tile(np.r_[False, np.ones(length - 1, bool)], sessions)
    return items, follows, topic_of


def test_deepwalk_beats_popularity_on_a_planted_graph():
    from eges.config import TrainConfig
    from eges.evaluation.scorers import deepwalk_vectors

    rng = np.random.default_rng(3)
    item, follows, topic_of = _planted_sessions(rng)
    n = len(topic_of)
    matrix, has = deepwalk_vectors(item, follows, n, TrainConfig(dimension=16, epochs=2, threads=1), seed=1)
    assert has.all()
    a = rng.integers(0, n, 2000)
    same = np.array([rng.choice(np.flatnonzero(topic_of == topic_of[x])) for x in a])
    pairs = Pairs(a, same, a, rng.integers(0, n, len(a)))
    deepwalk = {r["metric"]: r["value"] for r in score("t", CosineScorer("deepwalk", matrix, has), "b", pairs)}
    popular = {r["metric"]: r["value"] for r in score("t", PopularityScorer(np.bincount(item, minlength=n)), "b",
                                                        pairs)}
    assert deepwalk["auc"] > 0.8 and deepwalk["auc"] > popular["auc"] + 0.2


def test_deepwalk_walks_only_the_training_transitions(monkeypatch):
    """The link protocol hands the baselines sessions cut at every held-out transition: DeepWalk's graph holds
    exactly the remaining pairs (undirected, unit weights), never a held-out one."""
    from eges.config import default_config
    from eges.evaluation import protocols
    from eges.graph import transitions

    seen = []
    real = transitions.count_transitions
    monkeypatch.setattr(transitions, "count_transitions", lambda *a: seen.append(real(*a)) or seen[-1])
    rng = np.random.default_rng(5)
    item, follows, topic_of = _planted_sessions(rng, sessions=60)
    n = len(topic_of)
    start = ~follows
    prev = np.where(follows, np.r_[-1, item[:-1]], -1)
    keys = np.unique(prev[follows].astype(np.int64) * n + item[follows])
    held = rng.choice(keys, size=len(keys) // 3, replace=False)
    segment = segments_without(start, prev, item, held, n)
    config = default_config().replace("train", dimension=8, threads=1).replace("evaluate", deepwalk_epochs=1)
    protocols.baseline_scorers(("deepwalk",), item, segment, n, config)
    indptr, indices, weights = seen[0]
    graph_keys = set((np.repeat(np.arange(n), np.diff(indptr)).astype(np.int64) * n + indices).tolist())
    train = prev[follows].astype(np.int64) * n + item[follows]
    train = train[~np.isin(train, held)]
    expected = set(train.tolist()) | set(((train % n) * n + train // n).tolist())
    assert graph_keys == expected and weights.size


def test_side_mean_places_items_without_vectors_at_their_values_means():
    from eges.evaluation.scorers import side_mean_matrix

    rng = np.random.default_rng(2)
    n, d = 200, 8
    topic = rng.integers(0, 5, n)
    centre = rng.normal(size=(5, d))
    matrix = centre[topic] + 0.3 * rng.normal(size=(n, d))
    hidden = rng.random(n) < 0.2
    codes = np.stack([topic, rng.integers(0, 3, n)], axis=1).astype(np.int32)  # one telling field, one noise
    codes[0, 1] = -1
    out, has = side_mean_matrix(np.where(hidden[:, None], 0, matrix), ~hidden, codes)
    assert has.all()
    # Whatever a hidden item's own row holds (its behaviour), its vector is the catalogue's.
    again, _ = side_mean_matrix(np.where(hidden[:, None], rng.normal(size=(n, d)), matrix), ~hidden, codes)
    np.testing.assert_allclose(again, out, atol=1e-6)
    q = np.flatnonzero(hidden)
    same = np.array([rng.choice(np.flatnonzero((topic == topic[x]) & ~hidden)) for x in q])
    other = rng.choice(np.flatnonzero(~hidden), size=len(q))
    pairs = Pairs(q, same, q, other)
    auc = score("cold", CosineScorer("side_mean", out, has), "baseline", pairs)[0]["value"]
    assert auc > 0.8


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 120), st.integers(1, 60), st.sampled_from([1, 3, 10]),
       st.sampled_from(["clustered", "ties", "nan"]))
def test_hit_rate_from_target_ranks_equals_the_top_k_lists(seed, n, m, k, kind):
    """The validation slice counts each target's rank instead of building top-K lists; both give one HitRate@K
    (unknown items, a query that is its own target and the query itself among the candidates included; ``ties``:
    small integer vectors, many equal scores, which the lists order by item; ``nan``: rows of a diverged pass)."""
    from eges.validation.score import _hit_rate

    rng = np.random.default_rng(seed)
    if kind == "ties":
        matrix = rng.integers(0, 3, (n, 3)).astype(np.float32)
    else:
        centres = 3 * rng.standard_normal((4, 5))
        matrix = (rng.standard_normal((n, 5)) + centres[rng.integers(0, 4, n)]).astype(np.float32)
    if kind == "nan":
        matrix[rng.random(n) < 0.3] = np.nan
    has = rng.random(n) < 0.8
    query, target = rng.integers(0, n, m), rng.integers(0, n, m)
    target[: m // 4] = query[: m // 4]  # some pairs whose target is the query: never a hit
    pairs = Pairs(query, target, query, rng.integers(0, n, m))
    scorer = CosineScorer("v", matrix, has)
    k = min(k, max(int(has.sum()) - 1, 1))
    by_lists = next(r["value"] for r in score("t", scorer, "m", pairs, (k,)) if r["metric"] == "hit_rate")
    by_ranks = _hit_rate(scorer, pairs, k)
    assert by_ranks == by_lists or (by_ranks != by_ranks and by_lists != by_lists)
    ranks = scorer.target_ranks(query, target)
    usable = has & np.isfinite(matrix).all(axis=1)
    assert ((ranks == -1) == ~(usable[query] & usable[target] & (query != target))).all()


def test_equal_scores_rank_the_earlier_item_first_and_a_diverged_pass_scores_nothing():
    matrix = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [1, 1]], dtype=np.float32)  # 1, 2, 3 tie for every query
    scorer = CosineScorer("v", matrix, np.ones(5, dtype=bool))
    assert scorer.target_ranks(np.array([4, 4, 4, 0, 0]), np.array([1, 2, 3, 2, 3])).tolist() == [1, 2, 3, 2, 3]
    from eges.validation.score import _hit_rate

    pairs = Pairs(np.array([4, 4, 4]), np.array([1, 2, 3]), np.array([4, 4, 4]), np.array([0, 0, 0]))
    assert _hit_rate(scorer, pairs, 2) == pytest.approx(1 / 3)  # the top 2 of item 4: item 0 and item 1
    diverged = CosineScorer("v", np.full((5, 2), np.nan, dtype=np.float32), np.ones(5, dtype=bool))
    assert _hit_rate(diverged, pairs, 2) != _hit_rate(diverged, pairs, 2)  # NaN: no pair can be scored


def test_target_ranks_count_the_items_above_the_target_and_skip_the_query():
    matrix = np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1], [-1, 0]], dtype=np.float32)
    scorer = CosineScorer("v", matrix, np.array([True, True, True, True, False]))
    ranks = scorer.target_ranks(np.array([0, 0, 0, 0, 4, 3]), np.array([1, 2, 3, 0, 1, 2]))
    assert ranks.tolist() == [0, 1, 2, -1, -1, 0]  # from 0: 1, then 2, then 3; 4 is unknown; 3's nearest is 2


def test_a_scorer_with_rows_replaced_equals_one_built_afresh():
    rng = np.random.default_rng(3)
    matrix, has = rng.standard_normal((30, 4)).astype(np.float32), rng.random(30) < 0.7
    rows, vectors, row_has = np.array([2, 5, 7]), 5 * rng.standard_normal((3, 4)).astype(np.float32), np.array([1, 0, 1], bool)
    fresh_matrix, fresh_has = matrix.copy(), has.copy()
    fresh_matrix[rows], fresh_has[rows] = vectors, row_has
    fresh, replaced = CosineScorer("v", fresh_matrix, fresh_has), CosineScorer("v", matrix, has).with_rows(rows, vectors, row_has)
    a, b = rng.integers(0, 30, 200), rng.integers(0, 30, 200)
    np.testing.assert_allclose(replaced.pairs(a, b), fresh.pairs(a, b), rtol=1e-6)
    assert (replaced.has == fresh.has).all()

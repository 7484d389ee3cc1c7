import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import blob_raw
from ltdistill.data.longtail import build_longtail, class_counts, subsample
from ltdistill.errors import BadInput


def test_cifar10_lt_counts_match_the_reference_builder():
    # ichbill/LTDD utils/dataset_cifar10imbalance.py counts for 5000 per class
    assert class_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert class_counts(5000, 10, 10) == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
    assert class_counts(5000, 10, 50) == [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100]
    assert class_counts(5000, 10, 200) == [5000, 2775, 1540, 854, 474, 263, 146, 81, 45, 25]


def test_ltdd_long_tailed_test_counts_beta_200():
    # LTDD supplement Sec. 7.1
    assert class_counts(1000, 10, 200) == [1000, 555, 308, 170, 94, 52, 29, 16, 9, 5]


def test_beta_one_is_balanced_and_step_profile_halves():
    assert class_counts(100, 10, 1) == [100] * 10
    assert class_counts(100, 10, 10, "step") == [100] * 5 + [10] * 5


@pytest.mark.parametrize("beta", [0.5, 0, -1, 1000])
def test_out_of_range_beta_is_bad_input(beta):
    with pytest.raises(BadInput):
        class_counts(100, 10, beta)


def test_unknown_profile_is_bad_input():
    with pytest.raises(BadInput, match="profile"):
        class_counts(100, 10, 10, "linear")
    with pytest.raises(BadInput, match="num_classes must be an integer >= 1, got 0"):  # it returned []
        class_counts(100, 0, 10)
    with pytest.raises(BadInput, match="n_max must be an integer >= 1, got 2.5"):
        class_counts(2.5, 10, 1)


@settings(max_examples=60, deadline=None)
@given(n_max=st.integers(1, 5000), num_classes=st.integers(1, 120), beta=st.floats(1, 500),
       profile=st.sampled_from(["exp", "step"]))
def test_profiles_are_monotone_within_bounds(n_max, num_classes, beta, profile):
    if beta > n_max:
        with pytest.raises(BadInput):
            class_counts(n_max, num_classes, beta, profile)
        return
    counts = class_counts(n_max, num_classes, beta, profile)
    assert len(counts) == num_classes and counts[0] == n_max
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert min(counts) >= max(1, int(n_max / beta) - 1)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(0, 30), min_size=1, max_size=8), seed=st.integers(0, 2**31))
def test_subsample_takes_exactly_the_quota_of_each_class(counts, seed):
    labels = np.repeat(np.arange(len(counts)), 30)
    np.random.default_rng(seed).shuffle(labels)
    index = subsample(labels, counts, np.random.default_rng(seed))
    assert len(set(index.tolist())) == len(index)
    assert np.bincount(labels[index], minlength=len(counts)).tolist() == counts


def test_builder_is_seeded_and_long_tailed():
    raw = blob_raw(num_classes=4, per_class=60)
    a, b, c = (build_longtail(raw, 10, seed=s) for s in (0, 0, 1))
    assert a.counts == [60, 27, 12, 6]
    assert (a.train_x == b.train_x).all() and not (a.train_x == c.train_x).all()
    assert a.test_y.bincount().tolist() == [20] * 4  # balanced test set
    assert a.test_lt_y.bincount().tolist() == class_counts(20, 4, 10)
    assert a.train_x.dtype.is_floating_point and abs(float(a.train_x.mean())) < 1.0


def test_builder_needs_a_beta_for_balanced_sources():
    with pytest.raises(BadInput, match="imbalance"):
        build_longtail(blob_raw(), None)


def test_zca_whitening_is_fitted_on_train_and_applied_to_all_splits():
    data = build_longtail(blob_raw(size=4, per_class=80), 2)
    white = data.whitened(0.1)
    assert white.zca_eps == 0.1 and white.test_x.shape == data.test_x.shape
    flat = white.train_x.reshape(len(white.train_x), -1).double()
    cov = np.cov(flat.numpy(), rowvar=False)
    # whitened covariance is S/(S+eps): never above 1, close to 1 on strong directions
    assert np.linalg.eigvalsh(cov).max() < 1.0 + 1e-6


def test_holdout_is_a_balanced_validation_set_apart_from_training_and_leaves_the_test_sets_alone():
    raw = blob_raw(num_classes=4, per_class=60)
    plain, held = build_longtail(raw, 10), build_longtail(raw, 10, holdout=15)
    assert held.val_y.bincount().tolist() == [15] * 4
    assert held.counts == class_counts(45, 4, 10)  # n_max drops by the holdout
    train_rows = {tuple(r) for r in held.train_x.flatten(1).tolist()}
    assert not any(tuple(r) in train_rows for r in held.val_x.flatten(1).tolist())
    assert (held.test_x == plain.test_x).all() and (held.test_lt_y == plain.test_lt_y).all()
    assert held.mean == plain.mean and held.std == plain.std  # statistics of the whole source split
    assert held.describe()["holdout"] == 15 and "holdout" not in plain.describe()
    val = held.validation()
    assert (val.test_x == held.val_x).all() and (val.train_x == held.train_x).all()
    with pytest.raises(BadInput, match="holdout"):
        plain.validation()
    with pytest.raises(BadInput, match="holdout"):
        build_longtail(raw, 10, holdout=60)


def test_an_expert_buffer_refuses_data_with_another_holdout_or_class_order(tmp_path):
    from ltdistill.experts.buffer import ExpertBuffer

    raw = blob_raw(num_classes=4, per_class=60)
    plain, held = build_longtail(raw, 10), build_longtail(raw, 10, holdout=15)
    buffer = ExpertBuffer.create_or_open(tmp_path / "b", {"format": "ltdistill.ExpertBuffer/1", **plain.describe()})
    buffer.check_matches(plain.describe())
    with pytest.raises(BadInput, match="holdout"):
        buffer.check_matches(held.describe())
    # an explicit --experts of another order: its experts saw other classes as the tail (bench keys them apart)
    reordered = build_longtail(raw, 10, class_order="3,2,1,0").describe()
    with pytest.raises(BadInput, match="trained on class_order='natural', not '3,2,1,0'"):
        buffer.check_matches(reordered)
    shuffled = ExpertBuffer.create_or_open(tmp_path / "c", {"format": "ltdistill.ExpertBuffer/1", **reordered})
    with pytest.raises(BadInput, match="trained on class_order='3,2,1,0', not 'natural'"):
        shuffled.check_matches(plain.describe())
    # a whitened buffer (the papers' CIFAR experts) takes the plain data, whitened as its experts saw it, and only
    # then compares: past the data check, to the missing trajectories; a plain buffer refuses whitened data
    from ltdistill.experts.student import open_experts

    white = ExpertBuffer.create_or_open(tmp_path / "w", {"format": "ltdistill.ExpertBuffer/1",
                                                         **plain.whitened(0.1).describe()})
    with pytest.raises(BadInput, match="holds no finished 'standard' trajectory"):
        open_experts(white, plain)
    with pytest.raises(BadInput, match="trained on zca_eps=None, not 0.1"):
        open_experts(buffer, plain.whitened(0.1))

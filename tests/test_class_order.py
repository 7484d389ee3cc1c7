"""Class order as a setting (data/order.py): which class gets the profile's i-th count."""

import hashlib
import json

import pytest

from ltdistill import bench
from ltdistill.bench import load_suite
from ltdistill.cli import main
from ltdistill.data.longtail import build_longtail, class_counts, load_longtail
from ltdistill.errors import BadInput

# sha256 of digits-LT (beta 10, exp, data seed 0) as ltdistill built it before the class order existed (eade0e3)
DIGITS_B10 = "8b73355ce6e04807e18eaac57850eeb15d9c3c76af5fded6028ca24628138985"


def digest(data) -> str:
    h = hashlib.sha256()
    for t in (data.train_x, data.train_y, data.test_lt_x, data.test_lt_y):
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def test_the_natural_order_reproduces_the_earlier_sets_bit_for_bit():
    natural = load_longtail("digits", 10)
    assert digest(natural) == DIGITS_B10 == digest(load_longtail("digits", 10, class_order="natural"))
    assert "class_order" not in natural.describe()  # so every key made before the order existed still holds


@pytest.mark.parametrize("order", ["2,0,3,1", "random:5"])
def test_the_counts_per_class_follow_the_order_in_the_train_and_long_tailed_test_sets(order):
    from conftest import blob_raw
    from ltdistill.data.order import class_rank

    raw = blob_raw(per_class=60, test_per_class=20)
    data = build_longtail(raw, imbalance_factor=5, seed=0, class_order=order)
    rank = class_rank(order, raw.name, 4)
    profile = class_counts(60, 4, 5)
    assert [data.counts[c] for c in rank] == profile
    lt_test = [int((data.test_lt_y == c).sum()) for c in range(4)]
    assert [lt_test[c] for c in rank] == class_counts(20, 4, 5)
    assert data.describe()["class_order"] == order
    if order == "2,0,3,1":
        assert data.counts[2] == max(data.counts) and data.counts[1] == min(data.counts)


def test_hard_tail_puts_the_measured_hardest_classes_last(monkeypatch):
    from conftest import blob_raw
    from ltdistill.data import order as order_module

    accuracy = [0.9, 0.5, 0.99, 0.7]
    monkeypatch.setattr(order_module, "card", lambda name: {"easiest_first": [2, 0, 3, 1], "per_class_acc": accuracy})
    hard = build_longtail(blob_raw(), imbalance_factor=5, seed=0, class_order="hard-tail")
    easy = build_longtail(blob_raw(), imbalance_factor=5, seed=0, class_order="easy-tail")
    assert hard.counts[1] == min(hard.counts) and hard.counts[2] == max(hard.counts)
    assert easy.counts[1] == max(easy.counts) and easy.counts[2] == min(easy.counts)


def test_a_bad_order_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys):
    from conftest import blob_raw

    for order, message in [("rnd", "unknown class order"), ("1,2", "not a permutation"),
                           ("0,1,2,3,4,5,6,7,8,8", "not a permutation")]:
        with pytest.raises(BadInput, match=message):
            load_longtail("digits", 10, class_order=order)
        out = tmp_path / "set"
        assert main(["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                     "--class-order", order, "--out", str(out)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not (out / "meta.json").exists()
    with pytest.raises(BadInput, match="no class hardness is stored for 'blobs'"):
        build_longtail(blob_raw(), imbalance_factor=5, class_order="hard-tail")


def test_different_orders_never_share_an_expert_buffer_a_cell_or_a_model_cache(tmp_path):
    from test_bench import TINY_SUITE

    suite = tmp_path / "orders.toml"
    suite.write_text(TINY_SUITE.replace("[data]", '[data]\nclass_order = ["natural", "random:1"]')
                     .replace('name = "random"', 'name = "mtt"\nexperts = "standard"')
                     + "[experts.standard]\nnum = 1\nepochs = 2\n")
    cells, experts = bench.plan(load_suite(suite), tmp_path / "run", bench.command_flags("cpu", None))
    natural, shuffled = (next(c for c in cells if c.label == "mtt" and c.name.endswith(tail))
                         for tail in ("_s0", "_random1"))
    assert shuffled.name == natural.name + "_random1" and shuffled.key["class_order"] == "random:1"
    assert "class_order" not in natural.key and natural.directory != shuffled.directory
    assert len({e.directory for e in experts.values()}) == 2 and natural.experts != shuffled.experts
    assert shuffled.distill[shuffled.distill.index("--class-order") + 1] == "random:1"
    assert "--class-order" not in natural.distill
    a, b = (load_longtail("digits", 10, class_order=o).describe() for o in ("natural", "random:1"))
    assert json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True)  # buffer index, model-cache and run keys

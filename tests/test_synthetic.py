import json

import pytest
import torch

from ltdistill.errors import BadInput, Diverged
from ltdistill.synthetic import SyntheticSet


def test_round_trip_hard_labels(tmp_path):
    s = SyntheticSet(torch.randn(6, 1, 8, 8), torch.arange(6) % 3, meta={"method": "random", "ipc": 2})
    s.save(tmp_path / "a")
    t = SyntheticSet.load(tmp_path / "a")
    assert torch.equal(s.images, t.images) and torch.equal(s.labels, t.labels) and t.lr is None
    assert t.meta["method"] == "random" and not t.soft and t.meta["format"].startswith("ltdistill")
    x, y = t.as_dataset()[4]
    assert x.shape == (1, 8, 8) and int(y) == 1


def test_round_trip_soft_labels_and_learned_lr(tmp_path):
    s = SyntheticSet(torch.randn(4, 3, 4, 4), torch.randn(4, 5), lr=0.0123)
    s.save(tmp_path / "b")
    t = SyntheticSet.load(tmp_path / "b")
    assert t.soft and t.labels.dtype == torch.float32 and abs(t.lr - 0.0123) < 1e-7
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["soft_labels"] is True


def test_an_existing_result_is_never_overwritten(tmp_path):
    SyntheticSet(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)).save(tmp_path / "c")
    before = (tmp_path / "c" / "synthetic.safetensors").read_bytes()
    with pytest.raises(BadInput, match="already holds a result"):
        SyntheticSet(torch.ones(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)).save(tmp_path / "c")
    assert (tmp_path / "c" / "synthetic.safetensors").read_bytes() == before


def test_nan_is_never_written(tmp_path):
    images = torch.zeros(2, 1, 2, 2)
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(Diverged, match="NaN"):
        SyntheticSet(images, torch.zeros(2, dtype=torch.long)).save(tmp_path / "d")
    assert not (tmp_path / "d" / "meta.json").exists()


def test_loading_a_non_artifact_or_corrupt_one(tmp_path):
    with pytest.raises(BadInput, match="not a SyntheticSet"):
        SyntheticSet.load(tmp_path)
    SyntheticSet(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)).save(tmp_path / "e")
    (tmp_path / "e" / "synthetic.safetensors").write_bytes(b"garbage")
    with pytest.raises(BadInput, match="corrupt"):
        SyntheticSet.load(tmp_path / "e")


def test_shape_checks():
    with pytest.raises(BadInput):
        SyntheticSet(torch.zeros(2, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(BadInput):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long))


def test_label_stats_measure_softness_and_drift():
    classes = [0, 0, 1, 1]
    logits = torch.zeros(4, 3)
    logits[0, 0] = logits[2, 1] = 10.0  # confident and right
    logits[1, 0] = 0.1  # nearly flat: own-class probability e^0.1 / (e^0.1 + 2)
    logits[3, 2] = 10.0  # drifted: an image of class 1 labeled as class 2
    stats = SyntheticSet(torch.zeros(4, 1, 2, 2), logits, meta={"classes": classes}).label_stats()
    flat = torch.tensor(0.1).exp() / (torch.tensor(0.1).exp() + 2)
    assert stats["argmax_is_class"] == pytest.approx(0.75)
    assert stats["own_class_prob_per_class"] == pytest.approx([(1 + float(flat)) / 2, 0.5], abs=1e-3)
    assert SyntheticSet(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])).label_stats() is None


def test_a_set_whose_learned_lr_crossed_zero_is_refused_as_diverged_and_nothing_is_written(tmp_path):
    """load refuses an lr <= 0 (no model trains at it), so save refuses to write one: a trajectory run whose
    student lr went negative ends as diverged, not as a set that cannot be read back."""
    with pytest.raises(Diverged, match="learned student lr ended at -0.0018"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), lr=-0.0018).save(tmp_path / "set")
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("labels", [torch.tensor([0.0, 1.0]), torch.tensor([0, -1])])
def test_hard_labels_must_be_class_indices(labels):
    with pytest.raises(BadInput, match="hard labels must be class indices"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), labels)
    assert SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])).labels.tolist() == [0, 1]


def test_a_set_that_load_would_refuse_is_refused_when_made_and_a_meta_json_cannot_hold_writes_nothing(tmp_path):
    """The constructor holds what load holds (check_tensors): at least one image, a dict for meta.json; and save
    encodes meta.json before it writes anything, so a meta of other objects leaves no half-written set."""
    with pytest.raises(BadInput, match="needs at least one image"):
        SyntheticSet(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(BadInput, match="meta must be a dict .*, got list"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), meta=[1])  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="meta must hold JSON values only .*nothing was written"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), meta={"model": object()}).save(tmp_path / "s")
    assert not (tmp_path / "s").exists()
    # images of another dtype or not tensors at all, and an lr that is not a number: what load refuses, or an
    # AttributeError, before
    with pytest.raises(BadInput, match="synthetic images must be float32/float64, got torch.uint8"):
        SyntheticSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
    with pytest.raises(BadInput, match="images and labels are tensors, got list and Tensor"):
        SyntheticSet([[0.0]], torch.tensor([0]))  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="learned lr must be a number, got tensor"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), lr=torch.tensor(0.01))  # type: ignore[arg-type]

"""ADSA (labels/adsa.py): the calibration strength tau* found on the distilled set removes a head-class bias in
soft-label logits, and only that."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ltdistill.errors import BadInput
from ltdistill.labels import (
    ADSAConfig,
    CalibratedTeacher,
    calibrate,
    calibrated_set,
    estimate,
    estimate_for_set,
    estimate_from_teacher,
    make_config,
)
from ltdistill.labels.adsa import spread
from ltdistill.synthetic import SyntheticSet

COUNTS = [100, 56, 31, 17, 10]  # exponential profile, beta 10, class 0 the head
K, IPC = len(COUNTS), 4
CLASSES = torch.arange(K).repeat_interleave(IPC)


def log_prior(counts=COUNTS) -> torch.Tensor:
    c = torch.tensor(counts, dtype=torch.float64)
    return (c / c.sum()).log()


def clean_logits(margin: float = 1.5) -> torch.Tensor:
    """An unbiased labeler: every image's own class `margin` above the others, the same for every class."""
    return margin * F.one_hot(CLASSES, K).double()


def biased(tau0: float, margin: float = 1.5) -> torch.Tensor:
    """A labeler biased toward the head like a model trained on the long-tailed set: logits + tau0 * log pi."""
    return clean_logits(margin) + tau0 * log_prior()


def test_an_injected_prior_bias_is_recovered_and_removed():
    z = biased(1.3)
    cal = estimate(z, CLASSES, COUNTS)
    assert cal.tau == pytest.approx(1.3, abs=cal.config.tau_step / 2)
    injected = 1.3 * (log_prior() - log_prior().mean())
    assert torch.allclose(-cal.offsets, injected, atol=1e-9)  # the per-class offsets are the injected bias
    fixed = calibrate(z, cal)
    assert torch.allclose(fixed.softmax(1), clean_logits().softmax(1), atol=1e-9)
    # before: the tail images' labels point at the head; after: every label points at its image's class
    assert (z.argmax(1) != CLASSES).sum() >= 2 * IPC and torch.equal(fixed.argmax(1), CLASSES)
    # (B): head classes over-confident, tail under-confident before; equal after
    before, after = torch.tensor(cal.confidence_before), torch.tensor(cal.confidence_after)
    assert torch.all(before[:-1] > before[1:])
    assert after.std(unbiased=False) < 1e-9 and cal.spread_after < 1e-9 < 0.1 < cal.spread_before


def test_unbiased_soft_labels_are_left_as_they_are():
    z = clean_logits()
    cal = estimate(z, CLASSES, COUNTS)
    assert cal.tau == 0.0 and torch.equal(calibrate(z, cal), z)


def test_balanced_counts_calibrate_to_the_identity():
    z = biased(1.3)  # whatever the labels, a balanced training set has no prior to remove
    cal = estimate(z, CLASSES, [20] * K)
    assert cal.tau == 0.0 and torch.equal(calibrate(z, cal), z)
    assert torch.equal(cal.offsets, torch.zeros(K, dtype=torch.float64))


def test_tau_star_minimizes_the_spread_of_class_confidence():
    torch.manual_seed(1)
    z = biased(0.8) + 0.3 * torch.randn(K * IPC, K, dtype=torch.float64)
    cal = estimate(z, CLASSES, COUNTS)
    lp = log_prior() - log_prior().mean()
    taus = torch.linspace(0, 5, 1001, dtype=torch.float64)
    _, std = spread(z, CLASSES, lp, taus)
    assert 0 < cal.tau < 5 and cal.spread_after == pytest.approx(float(std.min()), abs=1e-12)
    assert cal.spread_after < cal.spread_before
    # a direct reading of (B) and (C) at tau* and at its grid neighbours
    def objective(tau):
        p = (z - tau * lp).softmax(1)[torch.arange(K * IPC), CLASSES]
        return torch.stack([p[CLASSES == i].mean() for i in range(K)]).std(unbiased=False)
    assert float(objective(cal.tau)) == pytest.approx(cal.spread_after, abs=1e-12)
    assert objective(cal.tau) <= objective(cal.tau - 0.01) and objective(cal.tau) <= objective(cal.tau + 0.01)


def test_class_confidence_is_a_mean_over_each_class_own_images():
    torch.manual_seed(4)
    z = biased(0.8) + 0.3 * torch.randn(K * IPC, K, dtype=torch.float64)
    tail = CLASSES == K - 1  # the tail's images, each given three times: its mean confidence is unchanged
    z3, classes3 = torch.cat([z, z[tail], z[tail]]), torch.cat([CLASSES, CLASSES[tail], CLASSES[tail]])
    once, thrice = estimate(z, CLASSES, COUNTS), estimate(z3, classes3, COUNTS)
    assert thrice.tau == once.tau and thrice.confidence_before == pytest.approx(once.confidence_before, abs=1e-12)


def test_weaker_tail_images_call_for_a_stronger_calibration():
    """The image-side bias: with the same labeler bias, distilled tail images that show their class less clearly
    leave the tail less confident, and ADSA adapts tau* upward."""
    z = biased(1.0)
    weak_tail = z.clone()
    tail = CLASSES >= 3
    weak_tail[tail, CLASSES[tail]] -= 0.7
    assert estimate(weak_tail, CLASSES, COUNTS).tau > estimate(z, CLASSES, COUNTS).tau + 0.1


def test_temperature_enters_the_softmax_of_the_estimate():
    torch.manual_seed(2)
    z = biased(1.0) + 0.5 * torch.randn(K * IPC, K, dtype=torch.float64)
    # softmax((z - tau lp) / T) = softmax(z / T - (tau / T) lp): tau*(z, T) = T * tau*(z / T, 1)
    at_t2 = estimate(z, CLASSES, COUNTS, make_config(tau_max=4.0, tau_step=0.02, temperature=2.0))
    at_t1 = estimate(z / 2, CLASSES, COUNTS, make_config(tau_max=2.0, tau_step=0.01))
    assert at_t2.tau == pytest.approx(2 * at_t1.tau, abs=1e-9) and at_t1.tau != estimate(z, CLASSES, COUNTS).tau


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_calibration_keeps_shape_dtype_and_device(dtype):
    cal = estimate(biased(1.3).float(), CLASSES, COUNTS)
    z = torch.randn(7, K).to(dtype)
    out = calibrate(z, cal)
    assert out.shape == z.shape and out.dtype == dtype and out.device == z.device
    if torch.cuda.is_available():
        g = calibrate(z.cuda(), cal)
        assert g.device == z.cuda().device and g.dtype == dtype


def test_a_teacher_set_is_calibrated_batch_by_batch():
    torch.manual_seed(3)
    teacher = nn.Linear(K, K).double()
    with torch.no_grad():
        teacher.weight.copy_(1.5 * torch.eye(K, dtype=torch.float64))
        teacher.bias.copy_(1.3 * log_prior())  # the long-tailed teacher's prior bias
    teacher.train()
    images = F.one_hot(CLASSES, K).double().view(-1, K, 1, 1).expand(-1, K, 1, 1)
    flat = nn.Sequential(nn.Flatten(), teacher)
    cal = estimate_from_teacher(flat, images, CLASSES, COUNTS, batch_size=3)
    assert cal.tau == pytest.approx(1.3, abs=0.005) and flat.training  # mode restored
    wrapped = CalibratedTeacher(flat, cal)
    x = torch.randn(6, K, 1, 1, dtype=torch.float64)  # an "augmented batch"
    assert torch.allclose(wrapped(x), calibrate(flat(x), cal))
    assert wrapped.eval() is wrapped and not flat.training  # eval()/train() reach the teacher
    assert set(wrapped.state_dict()) == {f"teacher.{k}" for k in flat.state_dict()}  # the offsets are not saved
    assert torch.equal(wrapped(images).argmax(1), CLASSES)


def test_a_soft_label_set_is_calibrated_and_says_so():
    meta = {"method": "datm", "classes": CLASSES.tolist()}  # as DATM and LTDD write it
    s = SyntheticSet(torch.randn(K * IPC, 1, 4, 4), biased(1.3).float(), meta=meta)
    cal = estimate_for_set(s, COUNTS)
    assert cal.tau == pytest.approx(1.3, abs=0.005)
    t = calibrated_set(s, cal)
    assert t.images is s.images and t.labels.dtype == torch.float32 and torch.equal(t.hard_labels, CLASSES)
    assert t.meta["label_calibration"]["tau"] == cal.tau and t.meta["method"] == "datm" and s.meta == meta
    assert torch.allclose(t.labels.softmax(1), clean_logits().float().softmax(1), atol=1e-5)
    # without meta's classes, the argmax of the biased labels would misplace the tail images: refused
    with pytest.raises(BadInput, match="no 'classes'") as e:
        estimate_for_set(SyntheticSet(s.images, s.labels, meta={"method": "datm"}), COUNTS)
    one_line(e)
    # a set whose classes are its labels' argmax keeps them, even where calibration moves the argmax
    mild = SyntheticSet(s.images, biased(0.5).float())
    assert torch.equal(mild.hard_labels, CLASSES)
    strong = estimate(mild.labels, CLASSES, COUNTS, make_config(tau_min=3.0, tau_max=3.0))
    over = calibrated_set(mild, strong)
    assert not torch.equal(over.labels.argmax(1), CLASSES) and torch.equal(over.hard_labels, CLASSES)
    hard = SyntheticSet(torch.randn(K * IPC, 1, 4, 4), CLASSES)
    with pytest.raises(BadInput, match="hard labels"):
        estimate_for_set(hard, COUNTS)
    with pytest.raises(BadInput, match="hard labels"):
        calibrated_set(hard, cal)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("logits, classes, counts, expected", [
    (biased(1.0)[:, :4], CLASSES, COUNTS, "4 classes but there are 5 class counts"),
    (biased(1.0).index_put((torch.tensor(2), torch.tensor(1)), torch.tensor(float("nan"), dtype=torch.float64)),
     CLASSES, COUNTS, "NaN/Inf"),
    (biased(1.0), CLASSES, [100, 56, 0, 17, 10], "every one > 0"),
    (biased(1.0), CLASSES, "100 56 10", "every one > 0, got '100 56 10'"),
    (biased(1.0), CLASSES, [[100, 56], [10]], "every one > 0, got"),
    (CLASSES, CLASSES, COUNTS, "float logits of shape"),
    (biased(1.0), CLASSES % 4, COUNTS, r"class\(es\) \[4\] have none"),
    (biased(1.0), CLASSES + 1, COUNTS, r"must be in \[0, 5\)"),
    (biased(1.0), CLASSES[:-1], COUNTS, "one integer class per image"),
])
def test_bad_inputs_are_refused_in_one_line(logits, classes, counts, expected):
    with pytest.raises(BadInput, match=expected) as e:
        estimate(logits, classes, counts)
    one_line(e)


def test_calibrating_logits_of_another_class_count_or_nan_is_refused():
    cal = estimate(biased(1.0), CLASSES, COUNTS)
    with pytest.raises(BadInput, match="have 4 classes but the calibration was estimated for 5") as e:
        calibrate(torch.randn(3, 4), cal)
    one_line(e)
    with pytest.raises(BadInput, match="NaN/Inf") as e:
        calibrate(torch.tensor([[0.0, float("inf"), 0, 0, 0]]), cal)
    one_line(e)


@pytest.mark.parametrize("values, expected", [
    ({"tau_step": 0.0}, "adsa.tau_step must be a number > 0"),
    ({"tau_max": -1.0}, "tau_max must be >= tau_min"),
    ({"tau_step": 1e-7}, "raise tau_step"),
    ({"temperature": float("nan")}, "adsa.temperature"),
    ({"tau": 1.0}, "has no config key"),
])
def test_bad_settings_are_refused_in_one_line(values, expected):
    with pytest.raises(BadInput, match=expected) as e:
        make_config(**values)
    one_line(e)
    if set(values) <= set(ADSAConfig.__dataclass_fields__):  # an ADSAConfig built by hand is checked as well
        with pytest.raises(BadInput, match=expected):
            estimate(biased(1.0), CLASSES, COUNTS, ADSAConfig(**values))


def test_evaluate_labels_adsa_calibrates_a_teacher_set_and_a_soft_label_set_and_records_tau(blob_data):
    """--labels adsa end to end: a relabeling set's teacher wrapped, a soft-label set's logits calibrated; a hard-label
    set refused."""
    from ltdistill import methods
    from ltdistill.evaluate import EvalConfig, evaluate_synthetic

    config = EvalConfig(model_options=(("width", 4), ("depth", 2)), runs=1, epochs=1, labels="adsa")
    teacher_set = methods.create("sre2l", width=4, depth=2, epochs=2, iterations=2).distill(blob_data, 2,
                                                                                           progress=False)
    result = evaluate_synthetic(teacher_set, blob_data, config, progress=False)
    assert "ADSA-calibrated" in result["label_regime"] and result["label_calibration"]["method"] == "adsa"
    assert result["label_calibration"]["tau"] >= 0
    soft = SyntheticSet(teacher_set.images, teacher_set.labels, meta={**teacher_set.meta,
                                                                       "classes": teacher_set.hard_labels.tolist()})
    result = evaluate_synthetic(soft, blob_data, config, progress=False)
    assert result["label_regime"].startswith("soft (stored logits), ADSA-calibrated")
    hard = methods.create("random").distill(blob_data, 2, progress=False)
    with pytest.raises(BadInput, match="hard labels only"):
        evaluate_synthetic(hard, blob_data, config, progress=False)


def test_adsa_t1_estimates_a_relabeling_teacher_s_strength_at_unit_temperature(blob_data, tmp_path):
    """--labels adsa measures tau* at the temperature the teacher relabels at (SRe2L's 4), adsa-t1 at T = 1, the
    paper's equation as written; both train at the teacher's T, at evaluation and at distill time alike."""
    from ltdistill import methods
    from ltdistill.cli import main
    from ltdistill.evaluate import EvalConfig, evaluate_synthetic
    from ltdistill.evaluate.protocol import load_teacher

    teacher_set = methods.create("sre2l", width=4, depth=2, epochs=2, iterations=2).distill(blob_data, 2,
                                                                                           progress=False)
    teacher, temperature = load_teacher(teacher_set, blob_data, "cpu")
    assert temperature == 4
    results = {labels: evaluate_synthetic(teacher_set, blob_data, EvalConfig(
        model_options=(("width", 4), ("depth", 2)), runs=1, epochs=1, labels=labels), progress=False)
        for labels in ("adsa", "adsa-t1")}
    for labels, at in (("adsa", 4.0), ("adsa-t1", 1.0)):
        found = estimate_from_teacher(teacher, teacher_set.images, teacher_set.hard_labels, blob_data.counts,
                                      make_config(temperature=at))
        record = results[labels]["label_calibration"]
        assert record["config"]["temperature"] == at and record["tau"] == found.tau
    assert "estimated at T=1, T=4" in results["adsa-t1"]["label_regime"]
    assert "estimated at" not in results["adsa"]["label_regime"] and "T=4" in results["adsa"]["label_regime"]

    common = ["distill", "--method", "sre2l", "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "epochs=1", "--set", "iterations=2", "--set", "width=4", "--no-progress"]
    for labels in ("adsa", "adsa-t1"):
        assert main([*common, "--labels", labels, "--out", str(tmp_path / labels)]) == 0
    stored = {labels: SyntheticSet.load(tmp_path / labels).meta["teacher"]["calibration"]
              for labels in ("adsa", "adsa-t1")}
    assert stored["adsa"]["config"]["temperature"] == 4 and stored["adsa-t1"]["config"]["temperature"] == 1


def test_adsa_at_distill_time_stores_the_calibration_with_the_teacher_and_every_evaluation_applies_it(tmp_path):
    from ltdistill.cli import main
    from ltdistill.data.longtail import load_longtail
    from ltdistill.evaluate.protocol import load_teacher
    from ltdistill.labels.adsa import CalibratedTeacher

    common = ["distill", "--method", "sre2l", "--dataset", "digits", "--imbalance", "10", "--ipc", "2", "--set",
              "epochs=1", "--set", "iterations=2", "--set", "width=4", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "own")]) == 0
    assert main([*common, "--labels", "adsa", "--out", str(tmp_path / "adsa")]) == 0
    own, calibrated = (SyntheticSet.load(tmp_path / d) for d in ("own", "adsa"))
    record = calibrated.meta["teacher"]["calibration"]
    assert record["method"] == "adsa" and calibrated.meta["label_calibration"] == record
    assert torch.equal(own.images, calibrated.images)
    data = load_longtail("digits", 10)
    plain, wrapped = load_teacher(own, data, "cpu")[0], load_teacher(calibrated, data, "cpu")[0]
    assert isinstance(wrapped, CalibratedTeacher)
    torch.testing.assert_close(wrapped(own.images) - plain(own.images),
                               torch.tensor(record["offsets"], dtype=torch.float32).expand(len(own.images), -1))
    assert main(["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                 "--labels", "adsa", "--out", str(tmp_path / "hard")]) == 2  # nothing to calibrate: said up front
    assert not (tmp_path / "hard").exists()


def test_a_stored_calibration_that_does_not_fit_is_refused():
    from ltdistill.errors import BadInput
    from ltdistill.labels.adsa import ADSACalibration

    good = {"method": "adsa", "tau": 0.5, "log_prior": [0.1, -0.1], "config": {"tau_step": 0.01},
            "confidence_before": [0.5, 0.6], "confidence_after": [0.5, 0.5], "spread_before": 0.05,
            "spread_after": 0.0}
    assert ADSACalibration.from_dict(good, 2).tau == 0.5
    for bad, classes in (({**good, "log_prior": [0.1]}, 2), ({**good, "tau": float("nan")}, 2),
                         ({**good, "method": "other"}, 2), ({k: v for k, v in good.items() if k != "config"}, 2),
                         ({**good, "config": {"tau_step": -1}}, 2)):
        with pytest.raises(BadInput):
            ADSACalibration.from_dict(bad, classes)


def test_a_strength_at_the_top_of_the_search_says_it_was_cut_short():
    from ltdistill.labels.adsa import ADSAConfig, estimate

    counts = [100, 10]
    logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # the tail class barely confident
    classes = torch.tensor([0, 0, 1, 1])
    assert estimate(logits, classes, counts, ADSAConfig(tau_max=0.05)).cut_short
    assert not estimate(logits, classes, counts).cut_short
    balanced = estimate(logits, classes, [10, 10])
    assert balanced.tau == 0 and not balanced.cut_short  # nothing to correct: the weakest strength, not "cut short"


@pytest.mark.parametrize("method, settings", [("random", []), ("dm", ["--set", "iterations=1"]),
                                               ("datm", ["--set", "soft_labels=false"])])
def test_distill_labels_adsa_is_refused_before_distilling_a_method_that_makes_class_labels_only(
        tmp_path, capsys, method, settings):
    from ltdistill.cli import main

    code = main(["distill", "--method", method, "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                 *settings, "--labels", "adsa", "--experts", str(tmp_path / "none"), "--out", str(tmp_path / "set"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "class labels only" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # refused before any work: no set, no half-made directory

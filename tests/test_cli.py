"""The CLI contract: results as files, bad input as one line on stderr with exit code 2, nothing overwritten."""

import json

import pytest
import torch

from conftest import write_mnist_dir
from ltdistill.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_datasets_lists_every_dataset_with_availability(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    assert "digits" in out and "yes" in out.splitlines()[1] and "imagenet-lt" in out


def test_distill_then_evaluate_on_digits(tmp_path, capsys):
    art = tmp_path / "random"
    code, out, _ = run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10",
                       "--ipc", "2", "--out", str(art), "--no-progress")
    assert code == 0 and (art / "meta.json").exists()
    meta = json.loads((art / "meta.json").read_text())
    assert meta["method"] == "random" and meta["imbalance_factor"] == 10 and meta["protocol"] == "cpu"
    report = tmp_path / "m.json"
    code, out, _ = run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "2", "--json", str(report),
                       "--no-progress")
    assert code == 0 and "balanced accuracy" in out
    result = json.loads(report.read_text())
    for key in ("balanced_acc", "per_class_acc", "class_acc_std", "many", "medium", "few", "lt_test", "runs",
                "model", "epochs"):
        assert key in result
    assert 0 <= result["balanced_acc"]["mean"] <= 1 and len(result["per_class_acc"]) == 10


def test_preset_file_fills_run_and_method(tmp_path, capsys):
    preset = tmp_path / "p.toml"
    preset.write_text('[run]\nmethod = "random"\ndataset = "digits"\nimbalance = 5\nipc = 1\n'
                      '[method]\nshort_class = "all"\n')
    code, _, err = run(capsys, "distill", "--config", str(preset), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 0, err


def bad(tmp_path, name):
    return str(tmp_path / name)


BAD_INPUTS = [
    (["distill", "--method", "random", "--dataset", "svhn", "--imbalance", "10", "--ipc", "1"], "unknown dataset"),
    (["distill", "--method", "magic", "--dataset", "digits", "--imbalance", "10", "--ipc", "1"], "unknown method"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "0"], "must be >= 1"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "0.01", "--ipc", "1"], "must be >= 1"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "50", "--set",
      "short_class='error'"], "exceeds the real images"),
    (["distill", "--method", "herding", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
      "epochs='many'"], "must be an integer"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--device",
      "tpu"], "--device"),
    # a start window that holds no epoch: the references' randint(low, upper) fails there; refused before experts
    (["distill", "--method", "datm", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
      "min_start_epoch=10"], "datm.min_start_epoch = 10 must be below the start window's upper bound "
     "min(current_max_start_epoch, max_start_epoch) = 10"),
    (["distill", "--method", "ltdd", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
      "t_cls_min=1"], "ltdd.t_cls_min = 1 must be below the start window's upper bound t_cls_max = 1"),
    # recovery aligns BN statistics: a model without BN is refused before its observer trains
    (["distill", "--method", "sre2l", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
      "model='mlp'", "--set", "epochs=1"], "sre2l.model must be a registered model with BatchNorm layers (convnet_bn,"),
    # numpy's generators refuse negative seeds, torch's those over 2**64 - 1: every seed flag takes one range
    # (params.Seed), a preset's [run] seed too
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--seed", "-1"],
     "--seed: must be in [0, 4294967295], got -1"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--seed",
      "99999999999999999999"], "--seed: must be in [0, 4294967295], got 99999999999999999999"),
    (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--data-seed",
      "-2"], "--data-seed: must be in [0, 4294967295], got -2"),
    (["experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "1", "--seed", "-1"],
     "--seed: must be in [0, 4294967295], got -1"),
    (["experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "1", "--seed",
      "4294967296"], "--seed: must be in [0, 4294967295], got 4294967296"),
]


@pytest.mark.parametrize("argv,match", BAD_INPUTS)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, argv, match):
    code, out, err = run(capsys, *argv, "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], err
    assert list(tmp_path.iterdir()) == []  # nothing on disk changed


def test_argparse_errors_are_one_line_exit_2(capsys):
    code, _, err = run(capsys, "distill", "--method", "random", "--ipc", "x", "--out", "o")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--ipc" in err


def test_existing_result_is_not_overwritten(tmp_path, capsys):
    args = ["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--out",
            str(tmp_path / "a"), "--no-progress"]
    assert run(capsys, *args)[0] == 0
    before = (tmp_path / "a" / "synthetic.safetensors").read_bytes()
    code, _, err = run(capsys, *args[:-3], "--ipc", "2", "--out", str(tmp_path / "a"), "--no-progress")
    assert code == 2 and "already holds a result" in err
    assert (tmp_path / "a" / "synthetic.safetensors").read_bytes() == before


def test_evaluate_refuses_a_non_artifact_and_an_existing_json(tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", str(tmp_path))
    assert code == 2 and "not a SyntheticSet" in err
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    code, _, err = run(capsys, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--json",
                       str(existing))
    assert code == 2 and "exists" in err and existing.read_text() == "{}"


def test_missing_and_corrupt_data_files(tmp_path, capsys):
    common = ["distill", "--method", "random", "--dataset", "mnist", "--imbalance", "2", "--ipc", "1",
              "--out", str(tmp_path / "o"), "--no-progress", "--data-dir"]
    code, _, err = run(capsys, *common, str(tmp_path / "empty"))  # a folder not there: a typo, said as one
    assert code == 2 and "--data-dir: no folder" in err and not (tmp_path / "o").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, *common, str(tmp_path / "empty"))
    assert code == 2 and "train-images-idx3-ubyte" in err and "looked in" in err
    root = write_mnist_dir(tmp_path / "mnist")
    data = (root / "train-images-idx3-ubyte").read_bytes()
    (root / "train-images-idx3-ubyte").write_bytes(data[:-100])
    code, _, err = run(capsys, *common, str(tmp_path))
    assert code == 2 and "truncated" in err


def test_config_with_unknown_key(tmp_path, capsys):
    preset = tmp_path / "bad.toml"
    preset.write_text("[method]\nlearning_rate = 1\n")
    code, _, err = run(capsys, "distill", "--method", "herding", "--dataset", "digits", "--imbalance", "10",
                       "--ipc", "1", "--config", str(preset), "--out", str(tmp_path / "o"))
    assert code == 2 and "no config key" in err


def test_every_preset_in_configs_is_valid():
    import dataclasses
    from pathlib import Path

    from ltdistill import methods
    from ltdistill.config import load_preset

    presets = sorted(Path(__file__).parent.parent.glob("configs/**/*.toml"))
    assert presets
    for path in presets:
        method_config, run = load_preset(path)
        cls = methods.METHODS[run["method"]]
        method = methods.create(run["method"], **method_config)
        assert dataclasses.asdict(method.config)  # every key known, every type right
        assert cls.name == run["method"] and run["ipc"] >= 1


def test_experts_then_mtt_through_the_cli(tmp_path, capsys):
    experts = tmp_path / "experts"
    code, out, err = run(capsys, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "2", "--epochs",
                         "3", "--width", "4", "--out", str(experts), "--no-progress")
    assert code == 0, err
    assert "2 standard trajectories" in out and "standard experts, final epoch: balanced test acc" in out
    accuracy = json.loads((experts / "accuracy.json").read_text())
    assert accuracy[0]["experts"] == 2 and len(accuracy[0]["per_class_acc"]) == 10
    assert accuracy[0]["buffer"] == "experts" and accuracy[0]["config"]["epochs"] == 3
    # rerunning the same command finds every expert finished and trains nothing
    assert run(capsys, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "2", "--epochs", "3",
               "--width", "4", "--out", str(experts), "--no-progress")[0] == 0
    art = tmp_path / "mtt"
    code, out, err = run(capsys, "distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc",
                         "1", "--experts", str(experts), "--iterations", "2", "--set", "syn_steps=2", "--set",
                         "max_start_epoch=1", "--set", "expert_epochs=2", "--out", str(art), "--no-progress")
    assert code == 0, err
    meta = json.loads((art / "meta.json").read_text())
    assert meta["method"] == "mtt" and len(meta["loss_history"]) == 2
    assert not (art / ".checkpoint").exists()  # removed once the artifact is written

    # a buffer from another beta, or one whose recorded model does not fit its trajectories: exit 2, one line
    mtt = ["distill", "--method", "mtt", "--dataset", "digits", "--ipc", "1", "--iterations", "2", "--set",
           "syn_steps=2", "--set", "max_start_epoch=1", "--set", "expert_epochs=2", "--no-progress"]
    code, _, err = run(capsys, *mtt, "--imbalance", "50", "--experts", str(experts), "--out", str(tmp_path / "b50"))
    assert code == 2 and "was trained on imbalance_factor=10.0" in err and len(err.strip().splitlines()) == 1
    index = json.loads((experts / "index.json").read_text())
    index["model_options"] = {**index["model_options"], "width": 8}
    (experts / "index.json").write_text(json.dumps(index))
    code, _, err = run(capsys, *mtt, "--imbalance", "10", "--experts", str(experts), "--out", str(tmp_path / "w8"))
    assert code == 2 and "made for another model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b50" / "meta.json").exists() and not (tmp_path / "w8" / "meta.json").exists()


TM_BAD = [
    (["distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "1"], "--experts"),
    (["distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--experts",
      "/nonexistent"], "not an expert buffer"),
    (["experts", "--dataset", "digits", "--imbalance", "10", "--shard", "3/2"], "--shard"),
    (["experts", "--dataset", "digits", "--imbalance", "10", "--decoupled", "--maxnorm", "big"], "--maxnorm"),
    (["experts", "--dataset", "digits", "--imbalance", "10", "--epochs", "0"], "--epochs"),
    (["evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "-5"], "--epochs"),
]


@pytest.mark.parametrize("argv,match", TM_BAD)
def test_trajectory_bad_input(tmp_path, capsys, argv, match):
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "o"), "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and match in lines[0], err


def test_table_renders_evaluation_jsons_and_refuses_other_files(tmp_path, capsys):
    from ltdistill.evaluate.metrics import aggregate, run_metrics

    result = aggregate([run_metrics([0, 1], [0, 1], [0, 0, 1], [0, 0, 1], [10, 2])])
    result.update(dataset="digits", imbalance_factor=5, method="random", ipc=2, protocol="cpu", epochs=3,
                  seconds_per_run=1.0)
    good = tmp_path / "r.json"
    good.write_text(json.dumps(result))
    code, out, _ = run(capsys, "table", str(good))
    assert code == 0 and "| digits | 5 | random | ? | 2 | 100.00 ± 0.00 |" in out  # no model recorded: ?
    other = tmp_path / "x.json"
    other.write_text("{}")
    code, _, err = run(capsys, "table", str(other))
    assert code == 2 and "not an evaluation JSON" in err
    other.write_bytes(b"\xff\xfe{")  # not UTF-8: a UnicodeDecodeError's traceback before
    code, _, err = run(capsys, "table", str(other))
    assert code == 2 and "not an evaluation JSON ('utf-8' codec" in err
    other.write_text(json.dumps({**result, "class_acc_std": "x"}))  # a field of another kind: a ValueError before
    code, _, err = run(capsys, "table", str(other))
    assert code == 2 and "x.json is corrupt: its class_acc_std is 'x'" in err


def test_preset_seed_is_used_and_the_flag_overrides_it(tmp_path, capsys):
    preset = tmp_path / "p.toml"
    preset.write_text('[run]\nmethod = "random"\ndataset = "digits"\nimbalance = 5\nipc = 1\nseed = 7\n')
    assert run(capsys, "distill", "--config", str(preset), "--out", str(tmp_path / "a"), "--no-progress")[0] == 0
    assert run(capsys, "distill", "--config", str(preset), "--seed", "3", "--out", str(tmp_path / "b"),
               "--no-progress")[0] == 0
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["seed"] == 7
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["seed"] == 3
    preset.write_text(preset.read_text().replace("seed = 7", "seed = -7"))
    code, _, err = run(capsys, "distill", "--config", str(preset), "--out", str(tmp_path / "c"), "--no-progress")
    assert code == 2 and "[run] seed must be an integer in [0, 4294967295], got -7" in err
    assert not (tmp_path / "c").exists()
    # the names a preset gives are checked with it, and the error says which file holds them
    for wrong, said in (('dataset = "fmnist"', "unknown dataset 'fmnist' (did you mean 'fashion-mnist'?)"),
                        ('class_order = "random:x"', "unknown class order 'random:x'")):
        preset.write_text(f'[run]\nmethod = "random"\nimbalance = 5\nipc = 1\ndataset = "digits"\n{wrong}\n'
                          .replace('dataset = "digits"\ndataset', "dataset"))
        code, _, err = run(capsys, "distill", "--config", str(preset), "--out", str(tmp_path / "c"), "--no-progress")
        assert code == 2 and f"p.toml: [run] {said}" in err and not (tmp_path / "c").exists()


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    for argv in (["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "1",
                  "--out", str(blocker / "out")],
                 ["experts", "--dataset", "digits", "--imbalance", "10", "--out", str(blocker / "experts")],
                 ["evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--json",
                  str(blocker / "r.json")]):
        code, _, err = run(capsys, *argv, "--no-progress")
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "cannot write" in lines[0], err
    assert blocker.read_text() == "keep me"


def test_an_artifact_with_the_wrong_class_count_is_refused(tmp_path, capsys):
    import torch

    from ltdistill.synthetic import SyntheticSet

    art = tmp_path / "soft5"
    SyntheticSet(torch.zeros(5, 1, 16, 16), torch.zeros(5, 5), meta={"dataset": "digits", "imbalance_factor": 10.0,
                                                                   "profile": "exp", "data_seed": 0}).save(art)
    code, _, err = run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "1", "--no-progress")
    assert code == 2 and "soft labels have 5 classes, the dataset has 10" in err
    art = tmp_path / "wrongsize"
    SyntheticSet(torch.zeros(5, 1, 28, 28), torch.zeros(5, dtype=torch.long),
                 meta={"dataset": "digits", "imbalance_factor": 10.0, "profile": "exp", "data_seed": 0}).save(art)
    code, _, err = run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "1", "--no-progress")
    assert code == 2 and "do not match" in err


def test_a_diverging_expert_is_one_line_exit_1_and_keeps_its_good_epochs(tmp_path, capsys):
    """lr 1e15 blows the expert up (the instance-normed ConvNet stays finite, if useless, up to ~1e11): one line on
    stderr, exit 1, no trajectory file written; what is kept is the resumable state of its finite epochs only."""
    out = tmp_path / "experts"
    code, _, err = run(capsys, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "2",
                       "--width", "4", "--lr", "1e15", "--out", str(out), "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "diverged" in lines[0] and "--lr" in lines[0], err
    assert not (out / "standard_000.safetensors").exists()
    from safetensors.torch import load_file

    for partial in out.glob(".partial/*.safetensors"):
        assert torch.isfinite(load_file(partial)["trajectory"]).all()


def test_holdout_travels_with_the_artifact_and_val_scores_on_it(tmp_path, capsys):
    art = tmp_path / "random"
    code, _, _ = run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10",
                     "--holdout", "20", "--ipc", "2", "--out", str(art), "--no-progress")
    assert code == 0 and json.loads((art / "meta.json").read_text())["holdout"] == 20
    report = tmp_path / "val.json"
    code, out, _ = run(capsys, "evaluate", str(art), "--split", "val", "--runs", "1", "--epochs", "2",
                       "--json", str(report), "--no-progress")
    result = json.loads(report.read_text())
    assert code == 0 and "VALIDATION" in out and result["split"] == "val" and result["holdout"] == 20
    assert result["train_counts"][0] == 116 - 20  # digits: the smallest class has 116 training images
    code, _, err = run(capsys, "evaluate", str(art), "--holdout", "5", "--no-progress")
    assert code == 2 and "metadata" in err
    code, _, err = run(capsys, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--split", "val",
                       "--runs", "1", "--epochs", "1", "--no-progress")
    assert code == 2 and "--holdout" in err
    plain = tmp_path / "plain"  # a set made without a holdout: it is its distillation that needs one
    assert run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
               "--out", str(plain), "--no-progress")[0] == 0
    code, _, err = run(capsys, "evaluate", str(plain), "--split", "val", "--runs", "1", "--no-progress")
    assert code == 2 and "plain was distilled without a holdout" in err and "distill it with --holdout V" in err


def test_methods_lists_each_field_with_its_choices_and_says_where_width_and_depth_come_from(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0
    dc = next(line for line in out.splitlines() if line.startswith("dc: "))
    assert "dsa_siamese='batch' (one of 'batch', 'per_image')" in dc and "net_momentum=0.0" in dc
    assert "width and depth come from --protocol" in out


def test_the_cifar10_lt_paths_of_the_papers_run_end_to_end_at_tiny_sizes(tmp_path, capsys):
    """The suite cifar10-lt's methods on CIFAR-10 files the test writes (three channels, 32x32): decoupled experts
    and LTDD from them; EDC, evaluated under its recipe with ADSA's labels. Tiny sizes: the commands and their
    records are what is checked, not accuracy. (ZCA-whitened buffers, which the papers' CIFAR experts use, are
    checked on digits in test_bench: a whitening of 3072 pixels costs tens of seconds here.)"""
    from conftest import write_cifar10_dir

    write_cifar10_dir(tmp_path, [40] * 5, 20)
    data = ["--dataset", "cifar10", "--imbalance", "4", "--data-dir", str(tmp_path), "--no-progress"]
    experts, ltdd, edc = tmp_path / "experts", tmp_path / "ltdd", tmp_path / "edc"
    code, _, err = run(capsys, "experts", *data, "--decoupled", "--num", "1", "--epochs", "2", "--cls-epochs", "2",
                       "--width", "4", "--out", str(experts))
    assert code == 0, err
    code, _, err = run(capsys, "distill", "--method", "ltdd", *data, "--ipc", "2", "--experts", str(experts),
                       "--iterations", "2", "--set", "n_rep=2", "--set", "n_cls=2", "--set", "t_rep=1", "--set",
                       "t_rep_max=1", "--set", "expert_epochs=1", "--out", str(ltdd))
    assert code == 0, err
    meta = json.loads((ltdd / "meta.json").read_text())
    assert meta["dataset"] == "cifar10" and meta["image_shape"] == [3, 32, 32] and len(meta["train_counts"]) == 10
    code, _, err = run(capsys, "distill", "--method", "edc", *data, "--ipc", "2", "--set", "observers=['convnet_bn']",
                       "--set", "epochs=1", "--set", "iterations=2", "--set", "width=4", "--out", str(edc))
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", str(edc), "--labels", "adsa", "--runs", "1", "--epochs", "1", "--width",
                         "4", "--no-progress", "--data-dir", str(tmp_path), "--json", str(tmp_path / "edc.json"))
    assert code == 0, err
    result = json.loads((tmp_path / "edc.json").read_text())
    assert result["eval_config"]["recipe"] == "edc" and result["label_calibration"]["method"] == "adsa"

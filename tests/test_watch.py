"""--log-dir: TensorBoard event files of experts, distill and evaluate, read back with TensorBoard's own reader."""

import json
import sys

import pytest

from ltdistill.cli import main
from ltdistill.synthetic import SyntheticSet

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

DATA = ["--dataset", "digits", "--imbalance", "10"]


def curves(log_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_experts_distill_and_evaluate_curves_read_back_in_tensorboard(tmp_path, capsys):
    logs, experts, art = tmp_path / "tb", tmp_path / "experts", tmp_path / "mtt"
    assert main(["experts", *DATA, "--num", "1", "--epochs", "3", "--width", "4", "--out", str(experts),
                 "--log-dir", str(logs / "experts"), "--no-progress"]) == 0
    assert main(["distill", "--method", "mtt", *DATA, "--ipc", "1", "--experts", str(experts), "--iterations", "3",
                 "--set", "syn_steps=2", "--set", "max_start_epoch=1", "--set", "expert_epochs=2", "--out", str(art),
                 "--log-dir", str(logs / "distill"), "--no-progress"]) == 0
    assert main(["evaluate", str(art), "--runs", "2", "--epochs", "2", "--json", str(tmp_path / "e.json"),
                 "--log-dir", str(logs / "evaluate"), "--no-progress"]) == 0
    capsys.readouterr()

    expert = curves(logs / "experts")
    assert [step for step, _ in expert["experts/standard_0/loss"]] == [1, 2, 3]  # one point an epoch, not a restart

    meta = json.loads((art / "meta.json").read_text())
    distill = curves(logs / "distill")
    assert [round(v, 4) for _, v in distill["distill/mtt/loss"]] == [round(v, 4) for v in meta["loss_history"]]
    assert [step for step, _ in distill["distill/mtt/lr"]] == [1, 2, 3]  # the learned student lr
    assert distill["distill/mtt/lr"][-1][1] == pytest.approx(SyntheticSet.load(art).lr, rel=1e-5)
    assert {"distill/mtt/skipped_nonfinite", "distill/mtt/rolled_back"} <= distill.keys()

    result = json.loads((tmp_path / "e.json").read_text())
    evaluation = curves(logs / "evaluate")
    for run in (1, 2):
        assert [step for step, _ in evaluation[f"evaluate/run{run}/loss"]] == [1, 2]
        per_class = [k for k in evaluation if k.startswith(f"evaluate/run{run}/test/class/")]
        assert len(per_class) == 10
    final = [evaluation[f"evaluate/run{r}/test/balanced_acc"][0][1] for r in (1, 2)]
    assert sum(final) / 2 == pytest.approx(100 * result["balanced_acc"]["mean"], abs=1e-3)
    assert evaluation["evaluate/run1/lr"][0][1] == pytest.approx(result["lr"], rel=1e-5)


def test_refused_settings_leave_no_log_directory(tmp_path, capsys):
    logs = tmp_path / "tb"
    code = main(["distill", "--method", "dm", *DATA, "--ipc", "1", "--set", "lr_img=-1", "--out",
                 str(tmp_path / "dm"), "--log-dir", str(logs), "--no-progress"])
    assert code == 2 and not logs.exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_linked_log_directory_and_a_missing_tensorboard_are_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "tb").symlink_to(tmp_path / "elsewhere")
    argv = ["distill", "--method", "random", *DATA, "--ipc", "1", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*argv, "--log-dir", str(tmp_path / "tb" / "run")]) == 2
    assert "symbolic link" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    assert main([*argv, "--log-dir", str(tmp_path / "plain")]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "plain").exists()


@pytest.fixture
def one_second_is_long(monkeypatch):
    """Every run here takes longer than LONG_RUN_S, as an hour-long one does on a real dataset."""
    from ltdistill import watch

    monkeypatch.setattr(watch, "LONG_RUN_S", 1e-9)
    monkeypatch.setattr(watch, "_warned", set())


def test_a_run_longer_than_an_hour_at_the_pace_of_its_first_steps_is_announced(tmp_path, capsys,
                                                                                one_second_is_long):
    assert main(["distill", "--method", "dm", *DATA, "--ipc", "1", "--iterations", "5",
                 "--out", str(tmp_path / "dm")]) == 0
    err = capsys.readouterr().err
    assert "warning: dm: at the pace of its first iterations here, the 2 iterations left take" in err
    assert "checkpoints every" in err and err.count("warning:") == 1
    assert main(["evaluate", str(tmp_path / "dm"), "--runs", "2", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "warning: evaluate: at the pace of its first epochs here, the 3 epochs left take" in err  # 1 + 2 x 1
    assert "--runs-dir" in err and err.count("warning:") == 1
    assert main(["experts", *DATA, "--num", "2", "--epochs", "2", "--width", "4", "--out",
                 str(tmp_path / "experts")]) == 0
    assert "warning: experts: at the pace of its first epochs here, the 3 epochs left take" in capsys.readouterr().err


def test_a_short_run_says_nothing_about_its_length(tmp_path, capsys):
    assert main(["distill", "--method", "dm", *DATA, "--ipc", "1", "--iterations", "5",
                 "--out", str(tmp_path / "dm")]) == 0
    assert "warning" not in capsys.readouterr().err

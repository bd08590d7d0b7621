"""Progress off a terminal: periodic lines on stderr, every item yielded once."""
from digits.progress import progress
from digits.stages.epochs import epoch_log


def test_log_lines_when_stderr_is_not_a_terminal(capsys):
    assert list(progress(range(5), "train_cnn", unit="epoch", every=0.0)) == [0, 1, 2, 3, 4]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("train_cnn: 1/5 epoch (20%), ")
    assert lines[-1].startswith("train_cnn: 5/5 epoch (100%), ")


def test_one_closing_line_for_a_quick_loop_of_unknown_length(capsys):
    assert list(progress(iter("ab"), "chunks")) == ["a", "b"]
    assert capsys.readouterr().err.splitlines() == ["chunks: 2 it, 0 s"]


def test_the_closing_line_is_not_repeated_when_the_last_periodic_line_said_it(capsys):
    list(progress(range(3), "train_resnet epoch 5/7", unit="batch", every=0.0))
    lines = [line.rsplit(",", 1)[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == [f"train_resnet epoch 5/7: {i}/3 batch ({100 * i / 3:.0f}%)" for i in (1, 2, 3)]


def test_each_training_epoch_is_one_line_of_the_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with epoch_log("resnet") as log:
        log(train_loss=0.5, train_accuracy=0.9, val_accuracy=0.98, lr=0.1)
        log(train_loss=0.25, train_accuracy=0.95, val_accuracy=0.99, lr=0.00016)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train_resnet: epoch")]
    assert lines == [
        "train_resnet: epoch 1: train loss 0.5000, train accuracy 0.9000, val accuracy 0.9800, lr 0.1",
        "train_resnet: epoch 2: train loss 0.2500, train accuracy 0.9500, val accuracy 0.9900, lr 0.00016"]
    assert (tmp_path / "reports" / "figures" / "resnet_curves.png").is_file()

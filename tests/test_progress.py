"""Progress off a terminal: periodic lines on stderr, every item yielded once."""
from digits.progress import progress


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

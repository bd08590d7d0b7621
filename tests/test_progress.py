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

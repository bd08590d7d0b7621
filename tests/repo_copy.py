"""A copy of this project's working tree as a fresh git repo, for tests that run DVC end to end."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_repo(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) to `dest` and commit it there.

    The copy has its own git user, since `dvc exp run` commits and CI may have none configured.
    """
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    for args in (["init", "-q"], ["config", "user.name", "digits tests"],
                 ["config", "user.email", "tests@digits.invalid"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, capture_output=True, text=True, check=True)
    return dest

"""Every project module a stage imports (transitively, lazy imports included) is among its deps in dvc.yaml,
so that editing it reruns the stage instead of DVC serving outputs made by the old code."""
import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file that defines module `name` (a package's __init__.py), or None if it is not the project's."""
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(name: str) -> set[str]:
    """Project modules that importing `name` runs: its parent packages and whatever its code imports, anywhere."""
    tree = ast.parse(module_file(name).read_text())
    found = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # submodules imported by name
    return {module for module in found if module.split(".")[0] == "digits" and module_file(module)}


def closure(name: str) -> set[Path]:
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imported(module) - seen)
    return {module_file(module).relative_to(ROOT) for module in seen}


def stage_module(stage: dict) -> str:
    command = stage["cmd"].split()  # e.g. python -m digits.stages.train_cnn ${key}
    assert command[:2] == ["python", "-m"], f"expected `python -m <module>`, got {stage['cmd']!r}"
    return command[2]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_project_file_is_a_dep(name):
    stage = STAGES[name].get("do", STAGES[name])  # a foreach stage's body is under `do`
    deps = [Path(dep) for dep in stage["deps"]]
    missing = sorted(str(path) for path in closure(stage_module(stage))
                     if not any(path == dep or dep in path.parents for dep in deps))
    assert not missing, f"dvc.yaml: stage {name} imports these files but does not list them in deps: {missing}"


def test_the_closure_follows_imports_inside_functions():
    """digits.cli imports the ensemble and the results table only inside the functions that need them."""
    assert {Path("src/digits/ensemble.py"), Path("src/digits/results.py")} <= closure("digits.cli")

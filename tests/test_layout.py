"""Dependencies point one way (README, "Layout"): each package imports only the packages below it.
Read from the code's own imports, including those inside functions."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# package -> the first-party packages it may import. reid_data and mesh import each other at package
# level only: the synthetic world (reid_data.synthetic) draws with mesh's rasterizer, and mesh's
# render precomputation reads data sets through reid_data.
MAY_IMPORT = {
    "configs": set(),
    "models": {"configs"},
    "reid_data": {"configs", "models", "mesh"},
    "mesh": {"configs", "models", "reid_data", "runtime"},
    "runtime": {"configs", "models", "reid_data"},
    "reid_eval": {"configs", "models", "reid_data", "mesh", "runtime"},
    "trainers": {"configs", "models", "reid_data", "mesh", "reid_eval", "runtime"},
    "visual_tools": {"configs", "models", "reid_data", "mesh", "reid_eval", "runtime"},
}


def imported_packages(path: Path, packages) -> set[str]:
    """The first-party top-level packages that one file imports (absolute imports only: a relative
    one stays inside its package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(top for top in (name.split(".")[0] for name in names) if top in packages)
    return found


def wrong_way_imports(root: Path, rules: dict[str, set[str]]) -> list[str]:
    """'file imports package' for every import against `rules`."""
    wrong = []
    for package, allowed in rules.items():
        for path in sorted((root / package).rglob("*.py")):
            for target in sorted(imported_packages(path, rules) - allowed - {package}):
                wrong.append(f"{path.relative_to(root)} imports {target}")
    return wrong


def test_every_package_imports_only_those_below_it():
    assert wrong_way_imports(REPO, MAY_IMPORT) == []


def test_the_check_finds_a_wrong_way_import_even_inside_a_function(tmp_path):
    for package in MAY_IMPORT:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "models" / "net.py").write_text("import torch\nfrom configs.loader import load_config\n")
    (tmp_path / "reid_eval" / "test.py").write_text("def main():\n    from trainers import build_trainer\n")
    (tmp_path / "trainers" / "loop.py").write_text("import visual_tools.common as common\nfrom . import base\n")
    assert wrong_way_imports(tmp_path, MAY_IMPORT) == ["reid_eval/test.py imports trainers",
                                                       "trainers/loop.py imports visual_tools"]


def test_the_rules_cover_every_package_of_the_house():
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(MAY_IMPORT)


def test_every_command_is_a_console_script_and_no_library_edits_sys_path():
    """Each `[project.scripts]` entry names a `main` marked by `configs.errors.command` (so it reports
    user errors in one line); each module with a `__main__` block is one of them; nothing outside
    tests/ and bench/ edits sys.path (the package is installed, editable, by setup.sh)."""
    import importlib
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    modules = set()
    for name, target in scripts.items():
        module, attr = target.split(":")
        assert attr == "main.cli", name
        assert callable(importlib.import_module(module).main.cli), name
        modules.add(module)
    runnable, edits = set(), []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in {"tests", "bench", ".venv"} or rel.parts[0].startswith("."):
            continue
        text = path.read_text()
        if 'if __name__ == "__main__":' in text:
            runnable.add(".".join(rel.with_suffix("").parts))
        if "sys.path" in text:
            edits.append(str(rel))
    assert runnable == modules and edits == []

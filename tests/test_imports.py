"""The rooms of the house: genjax/ imports neither experiments nor scripts; an experiment imports
genjax and itself, never another experiment; a script imports no other script; nobody imports a
private (underscore) name of another module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path, root: Path):
  """(module, names, line) of each import in `path`, relative imports resolved; also each
  attribute read off an imported name, as (its module, [attribute], line)."""
  tree = ast.parse(path.read_text(), filename=str(path))
  package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
  aliases = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        aliases[(a.asname or a.name).split(".")[0]] = a.name
        yield a.name, [], node.lineno
    elif isinstance(node, ast.ImportFrom):
      module = node.module or ""
      if node.level:
        parts = package.split(".")
        base = parts[: len(parts) - node.level + 1]
        module = ".".join([*base, module] if module else base)
      for a in node.names:
        aliases[a.asname or a.name] = f"{module}.{a.name}"
      yield module, [a.name for a in node.names], node.lineno
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
      if node.value.id in aliases:
        yield aliases[node.value.id], [node.attr], node.lineno


def private(names) -> list[str]:
  return [n for n in names if n.startswith("_") and not n.startswith("__")]


def problems(root: Path) -> list[str]:
  """One line for each import under root/{genjax,experiments,scripts} that breaks a rule."""
  scripts = {p.stem for p in (root / "scripts").glob("*.py")}
  found = []
  for folder in ("genjax", "experiments", "scripts"):
    for path in sorted((root / folder).rglob("*.py")):
      rel = path.relative_to(root)
      own = rel.parts[1] if folder == "experiments" and len(rel.parts) > 2 else None
      for module, names, line in imports(path, root):
        top = module.split(".")
        where = f"{rel}:{line}: {module} {names}"
        if folder == "genjax" and top[0] in ("experiments", "scripts"):
          found.append(f"{where}: the library imports an entry point")
        if own and top[0] == "experiments" and (len(top) < 2 or top[1] != own):
          found.append(f"{where}: experiment {own!r} imports another experiment")
        if folder == "scripts" and (top[0] == "scripts" or (len(top) == 1 and top[0] in scripts)):
          found.append(f"{where}: a script imports a script")
        if top[0] in ("genjax", "experiments", "scripts") and (private(names) or private(top[1:])):
          found.append(f"{where}: a private name of another module")
  return found


def test_the_checker_reads_every_file_and_resolves_imports():
  files = [p for f in ("genjax", "experiments", "scripts") for p in (ROOT / f).rglob("*.py")]
  assert len(files) > 60
  seen = {m for m, _, _ in imports(ROOT / "experiments/simswap/train.py", ROOT)}
  assert "genjax.losses" in seen or "genjax" in seen
  assert "experiments.simswap.train" not in seen
  # a relative import inside genjax resolves to the absolute module
  rel = {m for m, _, _ in imports(ROOT / "genjax/__init__.py", ROOT)}
  assert all(not m.startswith(".") for m in rel)


def test_no_room_imports_what_it_must_not():
  found = problems(ROOT)
  assert not found, "\n".join(found)


def test_the_checker_catches_each_kind(tmp_path):
  cases = {
    "genjax/a.py": "from experiments.gan import train\n",
    "genjax/b.py": "from . import a\nfrom .a import train\n",  # relative, allowed
    "experiments/__init__.py": "import importlib\n",  # the experiments' shared table, allowed
    "experiments/aae/train.py": "from experiments.faceswap import train as fs\n",
    "experiments/gan/train.py": "from experiments.gan.configs import dcgan\nimport experiments.vae\n",
    "scripts/one.py": "from scripts.two import main\nimport two\nimport experiments\n",
    "scripts/two.py": "from genjax.data import faces\nx = faces._private\n",
  }
  for rel, text in cases.items():
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text(text)
  found = problems(tmp_path)
  kinds = lambda text: sorted(line.split(":")[0] for line in found if text in line)
  assert kinds("the library imports an entry point") == ["genjax/a.py"]
  assert kinds("imports another experiment") == ["experiments/aae/train.py",
                                                 "experiments/gan/train.py"]  # fmt: skip
  assert kinds("a script imports a script") == ["scripts/one.py", "scripts/one.py"]
  assert kinds("a private name") == ["scripts/two.py"]
  assert len(found) == 6

"""Module paths named in README.md and docs/*.md exist: a move that forgets the docs fails here.

Checked: every dotted name `cnnkit.<module>...` whose first part is one of the package's modules
or folders (`cnnkit.calc.params.conv2d_params`: the module is imported, the attribute looked up),
and every `src/cnnkit/...` path. Other dotted words (ONNX metadata keys such as `cnnkit.model`)
are not module paths and are left alone.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "cnnkit"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOP = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
DOTTED = re.compile(r"\bcnnkit((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
PATH = re.compile(r"\bsrc/cnnkit/[A-Za-z0-9_/.-]*[A-Za-z0-9_]")


def resolves(name: str) -> bool:
    parts = name.split(".")
    for k in range(len(parts), 1, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def references() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{doc.relative_to(REPO)}:{number}"
            for m in DOTTED.finditer(line):
                if m.group(1).split(".")[1] in TOP:
                    found.append((where, number, "cnnkit" + m.group(1)))
            found += [(where, number, m.group(0)) for m in PATH.finditer(line)]
    return found


def test_docs_name_modules_that_exist():
    refs = references()
    assert len(refs) > 50  # the check reads the docs at all
    bad = [
        f"{where}: {name}"
        for where, _, name in refs
        if not (Path(REPO / name).exists() if name.startswith("src/") else resolves(name))
    ]
    assert not bad, "stale module paths in the docs:\n" + "\n".join(bad)


def test_the_check_catches_a_stale_path():
    assert resolves("cnnkit.calc.params.conv2d_params")
    assert not resolves("cnnkit.models.zoo.create_model")  # moved to cnnkit.models.registry
    assert not resolves("cnnkit.calc.arithmetic.no_such_function")

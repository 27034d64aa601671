"""Imports go one way: the core never imports the edges (api, web, realtime, connectors).

Run as ``python -m loket.checks.imports``; ``make test`` does. Exits 1 and lists violations.

Every spelling counts: ``import loket.web``, ``from loket.web import views``,
``from loket import web`` and relative imports (``from ..web import views``,
``from .. import web``), which are resolved against the importing file's package.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
CORE = ["tenancy", "inbox", "automation", "jobs", "events.py", "crypto.py", "http.py", "env.py"]
EDGES = ("api", "web", "realtime", "connectors")


def _module_package(path: Path, root: Path, package: str) -> list[str]:
    """The dotted package a module at ``path`` lives in (``__init__.py`` is its own package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    parts.pop()  # the module itself, or "__init__" for a package
    return [package, *parts]


def _imported_names(node: ast.AST, path: Path, root: Path, package: str) -> list[str]:
    """The absolute module names an import statement can bring in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = _module_package(path, root, package)
        if node.level > len(base):
            return []  # beyond the top-level package: an ImportError at runtime anyway
        base = base[: len(base) - node.level + 1]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    # ``from loket import web`` imports the submodule loket.web; for ``from loket.web import x``
    # the module name alone already matches.
    return [module, *(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")]


def _is_forbidden(name: str, forbidden: Iterable[str]) -> bool:
    return any(name == edge or name.startswith(f"{edge}.") for edge in forbidden)


def violations(
    root: Path = PACKAGE, *, package: str = "loket", core: Iterable[str] = CORE
) -> list[str]:
    """Violations in the core modules of the package at ``root`` (named ``package``)."""
    root = Path(root)
    forbidden = tuple(f"{package}.{edge}" for edge in EDGES)
    found = []
    for entry in core:
        target = root / entry
        if not target.exists():
            continue
        files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
        for path in files:
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                for name in _imported_names(node, path, root, package):
                    if _is_forbidden(name, forbidden):
                        rel = path.relative_to(root.parent)
                        found.append(f"{rel}:{node.lineno} imports {name}")
                        break  # one report per statement
    return found


def main() -> int:
    problems = violations()
    for problem in problems:
        print(f"import rule broken: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Imports go one way: the core never imports the edges (api, web, realtime, connectors).

Run as ``python -m loket.checks.imports``; ``make test`` does. Exits 1 and lists violations.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
CORE = ["tenancy", "inbox", "jobs", "events.py", "crypto.py", "http.py", "env.py"]
FORBIDDEN = ("loket.api", "loket.web", "loket.realtime", "loket.connectors")


def violations() -> list[str]:
    found = []
    for entry in CORE:
        root = PACKAGE / entry
        files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
        for path in files:
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    if name.startswith(FORBIDDEN):
                        rel = path.relative_to(PACKAGE.parent)
                        found.append(f"{rel}:{node.lineno} imports {name}")
    return found


def main() -> int:
    problems = violations()
    for problem in problems:
        print(f"import rule broken: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

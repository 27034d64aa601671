"""``loket``: the operator's command. Thin wrappers over Django management commands:
serve, worker, migrate, demo, createadmin, token create (and every other manage.py command)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loket.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    execute_from_command_line(["loket", *args])


if __name__ == "__main__":
    main()

"""``python -m tests.browser.serve serve --port N``: the ``loket`` command for the browser tests'
server, which also writes the traceback of every unhandled request exception to its log (with
DEBUG off, Django only mails those to ADMINS), so a failing browser test shows why a page was a
500. A signal receiver, because ``loket serve`` configures logging again as it starts."""

from __future__ import annotations

import sys
import traceback


def print_traceback(sender, request=None, **kwargs) -> None:
    where = f"{request.method} {request.get_full_path()}" if request is not None else "?"
    print(f"UNHANDLED EXCEPTION in {where}\n{traceback.format_exc()}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    from django.core.signals import got_request_exception

    from loket import cli

    got_request_exception.connect(print_traceback, weak=False)
    cli.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

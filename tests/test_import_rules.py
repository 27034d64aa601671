"""The import rule (core never imports the edges) catches every spelling of an import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from loket.checks import imports


@pytest.fixture
def tree(tmp_path):
    """A throwaway ``loket`` package with one core module to write imports into."""
    root = tmp_path / "loket"
    for directory in ("", "inbox", "inbox/services", "web", "connectors", "api", "realtime"):
        (root / directory).mkdir(exist_ok=True)
        (root / directory / "__init__.py").write_text("")

    def check(relative: str, source: str) -> list[str]:
        (root / relative).write_text(textwrap.dedent(source))
        return imports.violations(root)

    return check


@pytest.mark.parametrize(
    ("relative", "source", "imported"),
    [
        ("inbox/models.py", "import loket.web.views\n", "loket.web.views"),
        ("inbox/models.py", "import loket.connectors as c\n", "loket.connectors"),
        ("inbox/models.py", "from loket.api import urls\n", "loket.api"),
        ("inbox/models.py", "from loket import connectors\n", "loket.connectors"),
        ("inbox/models.py", "from loket import events, realtime\n", "loket.realtime"),
        ("inbox/models.py", "from loket import web as w\n", "loket.web"),
        ("inbox/models.py", "from ..web import views\n", "loket.web"),
        ("inbox/models.py", "from .. import api\n", "loket.api"),
        ("inbox/services/send.py", "from ...connectors import base\n", "loket.connectors"),
        ("inbox/services/send.py", "from ... import realtime\n", "loket.realtime"),
        ("inbox/__init__.py", "from .. import web\n", "loket.web"),
        ("http.py", "from . import connectors\n", "loket.connectors"),
        ("http.py", "from .api.urls import urlpatterns\n", "loket.api.urls"),
        ("inbox/models.py", "def f():\n    from loket import web\n", "loket.web"),
    ],
)
def test_every_form_of_a_forbidden_import_is_caught(tree, relative, source, imported):
    found = tree(relative, source)
    assert len(found) == 1, found
    assert found[0].startswith(f"loket/{relative}:")
    assert found[0].endswith(f"imports {imported}")


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("inbox/models.py", "from loket import events, crypto\n"),
        ("inbox/models.py", "from . import services\n"),
        ("inbox/models.py", "from ..tenancy import models\n"),
        ("inbox/services/send.py", "from ..models import Message\n"),
        ("inbox/services/send.py", "from ... import http\n"),
        ("inbox/models.py", "import loket.webhooks_helpers\n"),  # a prefix is not the edge
        ("inbox/models.py", "from loket import *\n"),
    ],
)
def test_core_imports_are_fine(tree, relative, source):
    assert tree(relative, source) == []


def test_edges_may_import_the_core_and_each_other(tree):
    assert tree("web/views.py", "from loket import connectors\nfrom ..inbox import models\n") == []


def test_the_real_package_keeps_the_rule():
    for entry in imports.CORE:
        assert (imports.PACKAGE / entry).exists(), entry
    assert imports.violations() == []


def test_the_command_passes_on_the_real_package():
    result = subprocess.run(
        [sys.executable, "-m", "loket.checks.imports"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

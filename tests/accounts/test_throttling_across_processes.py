"""Failed-login throttling holds across `loket serve` processes (PostgreSQL + Redis): five wrong
passwords through one process lock the account on another, even with the right password."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from django.conf import settings

from tests import factories
from tests.accounts.helpers import PASSWORD
from tests.conftest import require
from tests.processes import free_port, loket_process, subprocess_env, wait_for_http

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.subprocess]


def _sign_in(base: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10.0) as http:
        page = http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return http.post(
            "/accounts/login/",
            data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        )


def test_the_lock_is_shared_by_all_processes(transactional_db, tmp_path):
    require(bool(settings.REDIS_URL), "Redis (REDIS_URL)")
    email = f"kim-{uuid.uuid4().hex[:10]}@example.com"  # its own counters on a shared Redis
    factories.user(email)
    env = subprocess_env(tmp_path, LOKET_INPROCESS_WORKERS="0")
    port_a, port_b = free_port(), free_port()
    with (
        loket_process(["serve", "--port", str(port_a)], env, tmp_path / "a.log") as process_a,
        loket_process(["serve", "--port", str(port_b)], env, tmp_path / "b.log") as process_b,
    ):
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        wait_for_http(f"{a}/healthz", process=process_a)
        wait_for_http(f"{b}/healthz", process=process_b)

        for _ in range(5):
            response = _sign_in(a, email, "wrong-password")
            assert response.status_code == 200 and "not correct" in response.text
        response = _sign_in(b, email, PASSWORD)
        assert response.status_code == 200, "the other process let the right password in"
        assert "Too many failed login attempts" in response.text

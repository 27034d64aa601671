"""Meta's Graph API errors become plain words, whatever shape their details come in."""

from __future__ import annotations

import httpx

from loket.connectors.meta import graph


def error_response(status: int, error: dict) -> httpx.Response:
    return httpx.Response(status, json={"error": error})


def test_a_known_code_is_explained_with_metas_code():
    found = graph._error_of(
        error_response(400, {"message": "Re-engagement message", "code": 131047})
    )
    assert not found.transient
    assert "only allows an approved message template" in found.plain()
    assert "(Meta error 131047)" in found.plain()


def test_error_data_as_a_json_string_does_not_break_the_parser():
    found = graph._error_of(
        error_response(
            400,
            {
                "message": "(#100) Invalid parameter",
                "code": 100,
                "error_data": '{"blame_field_specs":[["message"]]}',
            },
        )
    )
    assert found.code == 100
    assert "Meta refused a parameter" in found.plain()


def test_error_data_details_are_kept_for_unknown_codes():
    found = graph._error_of(
        error_response(
            400,
            {"message": "Odd", "code": 999999, "error_data": {"details": "the number is odd"}},
        )
    )
    assert found.plain() == "Odd: the number is odd (Meta error 999999)"


def test_throttling_and_server_errors_are_transient_with_retry_after():
    throttled = httpx.Response(
        429, json={"error": {"message": "slow down", "code": 130429}}, headers={"Retry-After": "7"}
    )
    found = graph._error_of(throttled)
    assert found.transient and found.retry_after == 7
    assert graph._error_of(httpx.Response(502, text="Bad gateway")).transient

"""The OpenAPI document describes the API."""

from __future__ import annotations

from django.test import Client

from tests import factories


def test_openapi_json_lists_the_paths(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Loket API"
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/channels": {"get", "post"},
        "/api/v1/channels/{channel_id}": {"get"},
        "/api/v1/conversations": {"get"},
        "/api/v1/conversations/{conversation_id}": {"get", "patch"},
        "/api/v1/conversations/{conversation_id}/messages": {"get", "post"},
        "/api/v1/contacts": {"get"},
        "/api/v1/contacts/{contact_id}": {"get"},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert schema["components"]["securitySchemes"]["TokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_openapi_json_with_a_token_is_the_same(db):
    owner = factories.owner_of(factories.workspace())
    with_token = factories.ApiClient(owner).client.get("/api/v1/openapi.json")
    assert with_token.status_code == 200
    assert with_token.json() == Client().get("/api/v1/openapi.json").json()


def test_unknown_api_paths_answer_in_json(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_api_docs_use_vendored_assets_not_a_cdn(api, client):
    page = api.client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html
    assert "/static/ninja/" in html
    asset = client.get("/static/ninja/swagger-ui-bundle.js")
    assert asset.status_code == 200

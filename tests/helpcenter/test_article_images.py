"""Images uploaded into articles (loket.knowledge.images): the editor uploads one and gets its
Markdown, the preview and the help center (on Loket's host and a custom domain) show it from
their own origin, only public articles' images are public, other files and other workspaces'
images are refused, and the file goes with its article."""

from __future__ import annotations

import base64

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from loket.knowledge import images, services
from loket.knowledge.models import ArticleImage
from tests import factories
from tests.helpcenter.conftest import make_article
from tests.workspace_settings.conftest import signed_in, url

pytestmark = pytest.mark.django_db

# A 1x1 PNG and a 1x1 GIF.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def article(workspace, help_center):
    return make_article(workspace, {"en": ("boarding", "Boarding", "Show your ticket.")})


def upload(client, workspace, article, data: bytes, name: str = "Boarding_pass.png"):
    return client.post(
        url("knowledge-image-upload", workspace, article.pk),
        {"file": SimpleUploadedFile(name, data, content_type="image/png")},
    )


def test_upload_preview_and_help_center(workspace, owner, article, client):
    editor = signed_in(owner)
    response = upload(editor, workspace, article, PNG)
    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert body["markdown"] == f"![Boarding pass](image:{key})"
    image = ArticleImage.objects.get(key=key)
    assert (image.article_id, image.content_type, image.size) == (article.pk, "image/png", len(PNG))
    assert default_storage.exists(image.stored_name)

    # The editor's preview shows it from the settings' own URL, to members.
    preview = editor.post(url("knowledge-preview", workspace), {"body": body["markdown"]})
    assert f'src="{body["url"]}"' in preview.content.decode()
    fetched = signed_in(factories.agent(workspace)).get(body["url"])
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched["Content-Type"] == "image/png" and fetched["X-Content-Type-Options"] == "nosniff"

    # Published: the help center page shows it from the help center's own origin.
    translation = article.translations.get()
    services.save_draft(article, "en", title="Boarding", body=f"Show this:\n\n{body['markdown']}")
    services.publish(translation.__class__.objects.get(pk=translation.pk))
    page = client.get(f"/help/{workspace.slug}/en/a/boarding/")
    assert f'<img src="/help/{workspace.slug}/images/{key}" alt="Boarding pass">' in (
        page.content.decode()
    )
    public = client.get(f"/help/{workspace.slug}/images/{key}")
    assert public.status_code == 200 and public.content == PNG
    assert public["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in public["Content-Security-Policy"]


def test_on_a_custom_domain(workspace, owner, article, help_center, client, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "help.acme.test"]
    help_center.custom_domain = "help.acme.test"
    help_center.save()
    key = upload(signed_in(owner), workspace, article, GIF, "map.gif").json()["key"]
    services.save_draft(article, "en", title="Boarding", body=f"![map](image:{key})")
    services.publish(article.translations.get())
    page = client.get("/en/a/boarding/", HTTP_HOST="help.acme.test")
    assert f'<img src="/images/{key}" alt="map">' in page.content.decode()
    found = client.get(f"/images/{key}", HTTP_HOST="help.acme.test")
    assert found.status_code == 200 and found["Content-Type"] == "image/gif"


def test_only_public_articles_images_are_public(workspace, owner, help_center, client):
    internal = make_article(workspace, {"en": ("staff", "Staff", "x")}, internal=True)
    draft = make_article(workspace, {"en": ("soon", "Soon", "x")}, status="draft")
    editor = signed_in(owner)
    for article in (internal, draft):
        key = upload(editor, workspace, article, PNG).json()["key"]
        assert client.get(f"/help/{workspace.slug}/images/{key}").status_code == 404
        assert editor.get(url("knowledge-image", workspace, key)).status_code == 200
    assert client.get(f"/help/{workspace.slug}/images/{'0' * 24}.png").status_code == 404


def test_refusals_and_scoping(workspace, owner, article, client):
    editor = signed_in(owner)
    for data, name in ((SVG, "x.svg"), (b"<html>hi</html>", "x.png"), (b"", "empty.png")):
        response = upload(editor, workspace, article, data, name)
        assert response.status_code == 400
        assert "PNG, JPEG, WebP and GIF" in response.json()["error"]
    too_big = upload(editor, workspace, article, PNG + b"\0" * images.MAX_IMAGE_BYTES)
    assert too_big.status_code == 400 and "5 MB" in too_big.json()["error"]
    assert editor.post(url("knowledge-image-upload", workspace, article.pk)).status_code == 400
    assert not ArticleImage.objects.exists()
    # Agents may look, not upload.
    agent = signed_in(factories.agent(workspace))
    assert upload(agent, workspace, article, PNG).status_code == 403

    key = upload(editor, workspace, article, PNG).json()["key"]
    other = factories.workspace("other")
    stranger = signed_in(factories.owner_of(other))
    assert stranger.get(url("knowledge-image", other, key)).status_code == 404
    their = make_article(other, {"en": ("x", "X", "x")})
    assert upload(stranger, workspace, article, PNG).status_code == 404  # not their workspace
    assert (
        stranger.post(
            url("knowledge-image-upload", other, article.pk),
            {"file": SimpleUploadedFile("a.png", PNG)},
        ).status_code
        == 404
    )
    assert their.images.count() == 0


def test_the_file_goes_with_its_article(
    workspace, owner, article, django_capture_on_commit_callbacks
):
    key = upload(signed_in(owner), workspace, article, PNG).json()["key"]
    stored = ArticleImage.objects.get(key=key).stored_name
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_article(article, actor=owner)
    assert not ArticleImage.objects.exists() and not default_storage.exists(stored)


def test_the_api_uploads_an_image(workspace, owner, article):
    api = factories.ApiClient(owner)
    path = f"/api/v1/knowledge/articles/{article.pk}/images"
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 64
    response = api.client.post(path, {"alt": "The quay", "file": SimpleUploadedFile("q.jpg", jpeg)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["content_type"] == "image/jpeg" and body["size"] == len(jpeg)
    assert body["markdown"] == f"![The quay](image:{body['key']})"
    refused = api.client.post(path, {"file": SimpleUploadedFile("x.svg", SVG)})
    assert refused.status_code == 400 and "PNG, JPEG, WebP or GIF" in refused.content.decode()
    agent = factories.ApiClient(factories.agent(workspace))
    forbidden = agent.client.post(path, {"file": SimpleUploadedFile("a.png", PNG)})
    assert forbidden.status_code == 403
    stranger = factories.ApiClient(factories.owner_of(factories.workspace("other")))
    assert stranger.client.post(path, {"file": SimpleUploadedFile("a.png", PNG)}).status_code == 404
    assert ArticleImage.objects.count() == 1

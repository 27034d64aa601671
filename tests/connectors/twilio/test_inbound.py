"""Inbound SMS/MMS through the real webhook endpoint: signatures, storing, media, duplicates."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import httpx
import pytest
from asgiref.sync import async_to_sync

from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    ContactIdentity,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services.channels import create_channel
from loket.inbox.services.contacts import suggested_duplicates
from tests.connectors.providers import Answer, run_tasks, running

from .conftest import (
    CUSTOMER,
    JPEG,
    MEDIA,
    SAMPLES,
    SID,
    TOKEN,
    basic,
    make_channel,
    new_sid,
    sample,
    twilio_signature,
)


def test_a_signed_sms_is_stored_with_the_contact_phone_and_answered_with_empty_twiml(
    channel, post_twilio
):
    response = post_twilio(channel, sample("inbound_sms"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.endswith(b"<Response/>")  # no automatic reply from Twilio
    message = Message.objects.get()
    assert message.text == "Is mijn auto al klaar?"
    assert message.external_id == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert message.direction == "in"
    contact = message.conversation.contact
    assert contact.phone == CUSTOMER
    identity = ContactIdentity.objects.get(contact=contact)
    assert (identity.channel_id, identity.external_id) == (channel.pk, CUSTOMER)
    assert InboundEvent.objects.get().status == InboundStatus.PROCESSED


@pytest.mark.parametrize(
    "how",
    ["missing", "wrong token", "other host", "tampered body"],
)
def test_an_unverified_request_is_403_and_stores_nothing(channel, post_twilio, how):
    pairs = sample("inbound_sms")
    if how == "missing":
        response = post_twilio(channel, pairs, signature="")
    elif how == "wrong token":
        response = post_twilio(channel, pairs, token="f" * 32)
    elif how == "other host":
        url = f"https://attacker.example/hooks/twilio/{channel.uuid}/"
        response = post_twilio(channel, pairs, url=url)
    else:
        good = twilio_signature(TOKEN, f"http://testserver/hooks/twilio/{channel.uuid}/", pairs)
        changed = [(k, "Stuur de factuur naar mij" if k == "Body" else v) for k, v in pairs]
        response = post_twilio(channel, changed, signature=good)
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert not InboundEvent.objects.exists()


def test_behind_a_proxy_the_forwarded_scheme_and_host_are_what_twilio_signed(
    channel, post_twilio, settings
):
    # LOKET_BEHIND_PROXY=1 sets these two (settings.py); the test client needs them overridden.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "support.example.com"]
    settings.LOKET_PUBLIC_URL = "http://127.0.0.1:8000"  # not the URL Twilio used
    url = f"https://support.example.com/hooks/twilio/{channel.uuid}/"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "support.example.com"}
    response = post_twilio(channel, sample("inbound_sms"), url=url, headers=forwarded)
    assert response.status_code == 200
    assert Message.objects.count() == 1


def test_without_trusting_the_proxy_forwarded_headers_cannot_pass_a_signature(
    channel, post_twilio, settings
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "support.example.com"]
    url = f"https://support.example.com/hooks/twilio/{channel.uuid}/"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "support.example.com"}
    response = post_twilio(channel, sample("inbound_sms"), url=url, headers=forwarded)
    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_the_webhook_url_under_loket_public_url_is_accepted_with_or_without_its_port(
    channel, post_twilio, settings
):
    # What the admin pasted in the console, when the proxy forwards no headers.
    settings.LOKET_PUBLIC_URL = "https://support.example.com"
    url = f"https://support.example.com/hooks/twilio/{channel.uuid}/"
    assert post_twilio(channel, sample("inbound_sms"), url=url).status_code == 200
    with_port = f"https://support.example.com:443/hooks/twilio/{channel.uuid}/"
    pairs = sample("inbound_sms", MessageSid=new_sid(), SmsSid="x")
    assert post_twilio(channel, pairs, url=with_port).status_code == 200
    assert Message.objects.count() == 2


def test_a_repeated_delivery_is_one_message(channel, post_twilio):
    assert post_twilio(channel, sample("inbound_sms")).status_code == 200
    assert post_twilio(channel, sample("inbound_sms")).status_code == 200
    assert Message.objects.count() == 1
    statuses = sorted(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == [InboundStatus.DUPLICATE, InboundStatus.PROCESSED]


def _mms(provider_url: str, *urls_and_types: tuple[str, str]):
    changes = {
        "MessageSid": "MM" + "ab" * 16,
        "Body": "Foto van de schade",
        "NumMedia": str(len(urls_and_types)),
    }
    for index, (url, content_type) in enumerate(urls_and_types):
        changes[f"MediaUrl{index}"] = url
        changes[f"MediaContentType{index}"] = content_type
    return sample("inbound_sms", **changes)


def test_mms_media_is_downloaded_with_basic_auth_and_stored(
    transactional_db, channel, provider, post_twilio
):
    url = f"{provider.url}/2010-04-01/Accounts/{SID}/Messages/MM{'ab' * 16}/Media/ME{'01' * 16}"
    response = post_twilio(channel, _mms(provider.url, (url, "image/jpeg")))
    assert response.status_code == 200
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.PENDING
    assert attachment.filename == "image-1.jpg"
    assert attachment.content_type == "image/jpeg"

    run_tasks(retries_due=True)

    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.STORED, attachment.error
    assert attachment.file.read() == JPEG
    fetched = provider.requests_to("GET", r".*/Media/ME[0-9a-f]+")
    assert fetched and all(r.headers["authorization"] == basic() for r in fetched)
    assert Message.objects.get().text == "Foto van de schade"


def test_media_redirected_to_storage_is_fetched_there_without_credentials(
    transactional_db, channel, provider, post_twilio
):
    with running() as storage:
        storage.route("GET", r"/media/.*", Answer(200, JPEG, content_type="image/jpeg"))
        media_path = rf"/2010-04-01/Accounts/{SID}/Messages/MM{'ab' * 16}/Media/ME{'02' * 16}"
        provider.then(
            "GET",
            MEDIA,
            Answer(307, b"", headers={"Location": f"{storage.url}/media/abc?sig=1"}),
        )
        post_twilio(channel, _mms(provider.url, (provider.url + media_path, "image/png")))
        run_tasks(retries_due=True)

        attachment = Attachment.objects.get()
        assert attachment.status == AttachmentStatus.STORED, attachment.error
        assert attachment.file.read() == JPEG
        assert provider.requests_to("GET", media_path)[0].headers["authorization"] == basic()
        (stored,) = storage.requests
        assert "authorization" not in stored.headers


def test_media_on_another_host_never_gets_the_account_credentials(
    transactional_db, channel, post_twilio
):
    with running() as elsewhere:
        elsewhere.route(
            "GET", r"/files/.*", Answer(200, b"%PDF-1.4", content_type="application/pdf")
        )
        post_twilio(channel, _mms("", (f"{elsewhere.url}/files/quote.pdf", "application/pdf")))
        run_tasks(retries_due=True)
        attachment = Attachment.objects.get()
        assert attachment.status == AttachmentStatus.STORED, attachment.error
        assert attachment.filename == "file-1.pdf"
        (fetched,) = elsewhere.requests
        assert "authorization" not in fetched.headers


def test_media_twilio_no_longer_has_fails_with_a_reason(
    transactional_db, channel, provider, post_twilio
):
    media_path = rf"/2010-04-01/Accounts/{SID}/Messages/MM{'ab' * 16}/Media/ME{'03' * 16}"
    provider.then("GET", MEDIA, Answer(404, {"code": 20404, "message": "not found"}))
    post_twilio(channel, _mms(provider.url, (provider.url + media_path, "image/jpeg")))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.FAILED
    assert "no longer has this file" in attachment.error


def test_whatsapp_through_twilio_keeps_the_address_and_the_profile_name(channel, post_twilio):
    pairs = sample(
        "inbound_sms",
        From=f"whatsapp:{CUSTOMER}",
        To="whatsapp:+3197010203040",
        ProfileName="Emily Carter",
        MessageSid=new_sid(),
    )
    assert post_twilio(channel, pairs).status_code == 200
    contact = Message.objects.get().conversation.contact
    assert (contact.name, contact.phone) == ("Emily Carter", CUSTOMER)
    assert ContactIdentity.objects.get(contact=contact).external_id == f"whatsapp:{CUSTOMER}"


def test_an_sms_and_a_whatsapp_contact_with_one_phone_are_suggested_duplicates(
    workspace, provider, post_twilio
):
    sms = make_channel(workspace, name="SMS")
    whatsapp = make_channel(workspace, name="WhatsApp via Twilio", phone_number="+3197010203041")
    post_twilio(sms, sample("inbound_sms"))
    post_twilio(whatsapp, sample("inbound_sms", From=f"whatsapp:{CUSTOMER}", MessageSid=new_sid()))
    (pair,) = suggested_duplicates(workspace.pk)
    assert pair.first.pk != pair.second.pk
    assert {pair.first.phone, pair.second.phone} == {CUSTOMER}
    assert [evidence.field for evidence in pair.evidence] == ["phone"]
    channels = {i.channel_id for c in (pair.first, pair.second) for i in c.identities.all()}
    assert channels == {sms.pk, whatsapp.pk}


def test_unknown_and_interim_requests_are_acknowledged_and_ignored(channel, post_twilio):
    assert post_twilio(channel, [("AccountSid", SID), ("Foo", "bar")]).status_code == 200
    queued = sample("status_callback", MessageStatus="queued", SmsStatus="queued")
    assert post_twilio(channel, queued).status_code == 200
    assert not Message.objects.exists()
    statuses = set(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == {InboundStatus.IGNORED}


def test_a_message_without_a_sender_is_400(channel, post_twilio):
    pairs = [(k, v) for k, v in sample("inbound_sms") if k != "From"]
    response = post_twilio(channel, pairs)
    assert response.status_code == 400
    assert "From" in response.json()["error"]["message"]


def test_the_lean_asgi_route_checks_the_signature_behind_a_proxy(
    transactional_db, settings, tmp_path
):
    from loket.asgi import application
    from tests import factories

    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    channel = make_channel(factories.workspace())
    pairs = sample("inbound_sms", MessageSid=new_sid())
    url = f"https://support.example.com/hooks/twilio/{channel.uuid}/"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "support.example.com",
        "X-Twilio-Signature": twilio_signature(TOKEN, url, pairs),
    }

    async def post(sent_headers):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(
                f"/hooks/twilio/{channel.uuid}/", content=urlencode(pairs), headers=sent_headers
            )

    bad = async_to_sync(post)({**headers, "X-Forwarded-Host": "evil.example"})
    assert bad.status_code == 403
    ok = async_to_sync(post)(headers)
    assert ok.status_code == 200
    assert ok.text.endswith("<Response/>")
    assert Message.objects.filter(channel=channel).count() == 1


def test_a_whatsapp_contact_and_an_sms_contact_with_one_phone_are_suggested_duplicates(
    workspace, provider, post_twilio, client, settings
):
    """WhatsApp (Meta's Cloud API) gives "31612345678", Twilio "+31612345678": one person."""
    app_secret = "fedcba9876543210fedcba9876543210"
    with running() as meta:
        meta.route("GET", r"/v\d+\.\d+/\d+/message_templates", Answer(200, {"data": []}))
        settings.LOKET_META_GRAPH_URL = meta.url
        whatsapp, _ = create_channel(
            workspace,
            get_connector("whatsapp"),
            name="WhatsApp",
            config={
                "phone_number_id": "106540352242922",
                "business_account_id": "102290129340398",
                "access_token": "EAAGtoken-for-the-fake-graph",
                "app_secret": app_secret,
                "verify_token": "verify-me-please",
            },
        )
    body = (SAMPLES.parent / "whatsapp" / "text_message.json").read_bytes()
    signed = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        f"/hooks/whatsapp/{whatsapp.uuid}/",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signed},
    )
    assert response.status_code == 200
    sms = make_channel(workspace)
    assert post_twilio(sms, sample("inbound_sms")).status_code == 200

    (pair,) = suggested_duplicates(workspace.pk)
    assert [evidence.field for evidence in pair.evidence] == ["phone"]
    channels = {i.channel_id for c in (pair.first, pair.second) for i in c.identities.all()}
    assert channels == {whatsapp.pk, sms.pk}
    assert pair.second.phone == CUSTOMER


def test_a_json_webhook_is_checked_against_its_body_hash(channel, client):
    body = b'{"MessageSid": "SMx", "Body": "hoi"}'
    digest = hashlib.sha256(body).hexdigest()
    path = f"/hooks/twilio/{channel.uuid}/?bodySHA256={digest}"
    signed = twilio_signature(TOKEN, f"http://testserver{path}", [])

    def post(data):
        return client.post(
            path,
            data=data,
            content_type="application/json",
            headers={"X-Twilio-Signature": signed},
        )

    assert post(body.replace(b"hoi", b"doei")).status_code == 403
    assert not InboundEvent.objects.exists()
    assert post(body).status_code == 200  # verified; not a messaging event Loket knows
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED

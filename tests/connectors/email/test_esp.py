"""Inbound mail through ESP webhooks (loket.connectors.email.esp): Mailgun, Postmark, SendGrid,
Amazon SES over SNS. Payload fixtures in esp_payloads/ are shaped like each ESP's documented
post and carry the same small real mail (mail.eml)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from loket.connectors.base import BadPayload, InvalidConfig, WebhookRejected, WebhookRequest
from loket.connectors.email import esp
from loket.connectors.email.parsing import parse_email
from tests.certs import self_signed

PAYLOADS = Path(__file__).parent / "esp_payloads"
MAIL = (PAYLOADS / "mail.eml").read_bytes()
URL = "https://loket.example/hooks/email/0b8f6c1e-3a57-4c4e-9d0a-6f1de2b1c3a4/"

MAILGUN_BODY = (PAYLOADS / "mailgun-mime.multipart").read_bytes()
MAILGUN_TYPE = "multipart/form-data; boundary=a5e3c1b0f7d94ce2b3a8b9f0d6e4c2a1"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MAILGUN_TIME = 1767345600  # the fixture's timestamp field

POSTMARK_BODY = (PAYLOADS / "postmark-inbound.json").read_bytes()
SENDGRID_BODY = (PAYLOADS / "sendgrid-raw.multipart").read_bytes()
SENDGRID_TYPE = "multipart/form-data; boundary=xYzZY"

PASSWORD = "Tr0ub4dor-and-3"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:loket-inbound"


def make_request(
    body: bytes,
    content_type: str = "",
    *,
    password: str | None = None,
    headers: dict[str, str] | None = None,
) -> WebhookRequest:
    all_headers = {"content-type": content_type, "user-agent": "test", **(headers or {})}
    if password is not None:
        token = base64.b64encode(f"loket:{password}".encode()).decode()
        all_headers["authorization"] = f"Basic {token}"
    return WebhookRequest("POST", URL, URL[len("https://loket.example") :], "", all_headers, body)


def assert_is_the_mail(raw: bytes | None) -> None:
    assert raw == MAIL
    parsed = parse_email(raw)
    assert parsed.subject == "Bestelling 4411 is niet aangekomen \u2013 graag hulp"
    assert parsed.sender is not None
    assert parsed.sender.address == "renee.jansen@klant.example"
    assert parsed.sender.name == "Renée Jansen"
    assert [a.filename for a in parsed.attachments] == ["factuur-4411.txt"]


def rejected(esp_name, request, secrets, **kwargs) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        esp.verify(esp_name, request, secrets, **kwargs)
    return info.value


def test_each_esp_names_its_secrets():
    assert set(esp.SECRET_KEYS) == set(esp.ESPS) == {"mailgun", "postmark", "sendgrid", "ses"}
    assert esp.SECRET_KEYS["mailgun"] == ("esp_signing_key",)
    assert esp.SECRET_KEYS["postmark"] == ("esp_webhook_password",)
    assert "esp_sns_topic_arn" in esp.SECRET_KEYS["ses"]


def test_basic_auth_challenge_names_a_realm():
    # Amazon SNS only sends the URL's credentials after a 401 with a Basic challenge and realm.
    assert esp.BASIC_AUTH_CHALLENGE["WWW-Authenticate"].startswith("Basic realm=")


def test_journal_meta_keeps_the_content_type():
    request = make_request(MAILGUN_BODY, MAILGUN_TYPE)
    assert esp.journal_meta("mailgun", request) == {"content_type": MAILGUN_TYPE}
    assert json.loads(json.dumps(esp.journal_meta("mailgun", request)))  # JSON-able


def test_an_unknown_esp_is_refused():
    assert rejected("sparkpost", make_request(b"{}"), {}).status == 403
    with pytest.raises(BadPayload):
        esp.raw_mime("sparkpost", b"{}", {})


# -- Mailgun ---------------------------------------------------------------------------------------

MAILGUN_SECRETS = {"esp_signing_key": MAILGUN_KEY}


def test_mailgun_verifies_and_gives_the_exact_mime():
    request = make_request(MAILGUN_BODY, MAILGUN_TYPE)
    esp.verify("mailgun", request, MAILGUN_SECRETS, now=MAILGUN_TIME + 42)
    assert_is_the_mail(esp.raw_mime("mailgun", MAILGUN_BODY, esp.journal_meta("mailgun", request)))


def test_mailgun_wrong_signing_key():
    request = make_request(MAILGUN_BODY, MAILGUN_TYPE)
    error = rejected("mailgun", request, {"esp_signing_key": "key-other"}, now=MAILGUN_TIME)
    assert error.status == 401
    assert "signing key" in error.reason


def test_mailgun_altered_token_breaks_the_signature():
    body = MAILGUN_BODY.replace(b"e0b5477167110d68991efc6b9f", b"e0b5477167110d68991efc6b9e")
    error = rejected("mailgun", make_request(body, MAILGUN_TYPE), MAILGUN_SECRETS, now=MAILGUN_TIME)
    assert error.status == 401


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_mailgun_stale_or_future_timestamp(offset):
    request = make_request(MAILGUN_BODY, MAILGUN_TYPE)
    error = rejected("mailgun", request, MAILGUN_SECRETS, now=MAILGUN_TIME + offset)
    assert error.status == 401
    assert "5 minutes" in error.reason


def test_mailgun_without_signature_fields():
    body = MAILGUN_BODY.replace(b'name="signature"', b'name="x-signature"')
    error = rejected("mailgun", make_request(body, MAILGUN_TYPE), MAILGUN_SECRETS, now=MAILGUN_TIME)
    assert error.status == 401
    assert "signature" in error.reason


def test_mailgun_not_a_form_post_is_rejected():
    error = rejected("mailgun", make_request(b"{}", "application/json"), MAILGUN_SECRETS)
    assert error.status == 401


def test_mailgun_channel_without_a_key_refuses_everything():
    error = rejected("mailgun", make_request(MAILGUN_BODY, MAILGUN_TYPE), {}, now=MAILGUN_TIME)
    assert error.status == 403


def test_mailgun_subaccount_parent_signature_is_accepted():
    parent_key = "key-parent-account"
    stamp, token = b"1767345600", b"e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
    parent = hmac.new(parent_key.encode(), stamp + token, hashlib.sha256).hexdigest().encode()
    extra = (
        b'Content-Disposition: form-data; name="parent-signature"\r\n\r\n' + parent + b"\r\n"
        b"--a5e3c1b0f7d94ce2b3a8b9f0d6e4c2a1--\r\n"
    )
    body = MAILGUN_BODY.replace(b"--a5e3c1b0f7d94ce2b3a8b9f0d6e4c2a1--\r\n", b"") + (
        b"--a5e3c1b0f7d94ce2b3a8b9f0d6e4c2a1\r\n" + extra
    )
    request = make_request(body, MAILGUN_TYPE)
    esp.verify("mailgun", request, {"esp_signing_key": parent_key}, now=MAILGUN_TIME)
    assert esp.raw_mime("mailgun", body, {"content_type": MAILGUN_TYPE}) == MAIL


def test_mailgun_urlencoded_post():
    from urllib.parse import urlencode

    fields = {
        "recipient": "support@loket.example",
        "body-mime": MAIL.decode("ascii"),
        "timestamp": "1767345600",
        "token": "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
        "signature": "9deec036d3a44f8fb9eb85b9fa58804342d5d1e1be089a6b42537b2d87697730",
    }
    body = urlencode(fields).encode()
    content_type = "application/x-www-form-urlencoded"
    esp.verify("mailgun", make_request(body, content_type), MAILGUN_SECRETS, now=MAILGUN_TIME)
    assert esp.raw_mime("mailgun", body, {"content_type": content_type}) == MAIL


def test_mailgun_parsed_post_asks_for_the_mime_url():
    body = MAILGUN_BODY.replace(b'name="body-mime"', b'name="body-plain"')
    with pytest.raises(BadPayload, match="must end in 'mime'"):
        esp.raw_mime("mailgun", body, {"content_type": MAILGUN_TYPE})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not a form at all", MAILGUN_TYPE),  # no boundary in the body
        (MAILGUN_BODY[:700], MAILGUN_TYPE),  # cut off
        (MAILGUN_BODY, "multipart/form-data"),  # no boundary parameter
        (MAILGUN_BODY, "application/json"),
    ],
)
def test_mailgun_malformed_body(body, content_type):
    with pytest.raises(BadPayload):
        esp.raw_mime("mailgun", body, {"content_type": content_type})


def test_mailgun_a_body_of_tens_of_megabytes():
    line = b"Dit is een lange regel tekst om de mail groot te maken, zonder betekenis.\r\n"
    big_mail = MAIL.replace(b"Hallo,\r\n", b"Hallo,\r\n" + line * 300_000, 1)  # ~23 MB
    body = MAILGUN_BODY.replace(MAIL, big_mail)
    assert len(body) > 20_000_000
    esp.verify("mailgun", make_request(body, MAILGUN_TYPE), MAILGUN_SECRETS, now=MAILGUN_TIME)
    assert esp.raw_mime("mailgun", body, {"content_type": MAILGUN_TYPE}) == big_mail


def test_mailgun_boundary_prefix_inside_a_field_is_not_a_delimiter():
    # "--<boundary>X" at the start of a line is content, not a delimiter (RFC 2046).
    tricky = MAIL + b"--a5e3c1b0f7d94ce2b3a8b9f0d6e4c2a1X not a boundary\r\n"
    body = MAILGUN_BODY.replace(MAIL, tricky)
    assert esp.raw_mime("mailgun", body, {"content_type": MAILGUN_TYPE}) == tricky


# -- Postmark --------------------------------------------------------------------------------------

POSTMARK_SECRETS = {"esp_webhook_password": PASSWORD}


def test_postmark_verifies_and_gives_the_exact_mime():
    request = make_request(POSTMARK_BODY, "application/json", password=PASSWORD)
    esp.verify("postmark", request, POSTMARK_SECRETS)
    assert_is_the_mail(
        esp.raw_mime("postmark", POSTMARK_BODY, esp.journal_meta("postmark", request))
    )


def test_postmark_wrong_password():
    request = make_request(POSTMARK_BODY, "application/json", password="guess")
    error = rejected("postmark", request, POSTMARK_SECRETS)
    assert error.status == 401
    assert "wrong webhook password" in error.reason


def test_postmark_missing_auth():
    error = rejected("postmark", make_request(POSTMARK_BODY, "application/json"), POSTMARK_SECRETS)
    assert error.status == 401
    assert "https://loket:<password>@" in error.reason


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic", "Basic !!!not-base64!!!", "Basic bG9rZXQ="]
)
def test_postmark_malformed_auth(header):
    request = make_request(POSTMARK_BODY, headers={"authorization": header})
    assert rejected("postmark", request, POSTMARK_SECRETS).status == 401


def test_postmark_channel_without_a_password_refuses_everything():
    request = make_request(POSTMARK_BODY, "application/json", password="")
    assert rejected("postmark", request, {"esp_webhook_password": ""}).status == 403


def test_postmark_without_raw_email_says_which_option_to_switch_on():
    doc = json.loads(POSTMARK_BODY)
    del doc["RawEmail"]
    with pytest.raises(BadPayload, match="Include raw email content in JSON payload"):
        esp.raw_mime("postmark", json.dumps(doc).encode(), {})


@pytest.mark.parametrize("body", [b"<html>", b"[1, 2]", b'{"Hello": "world"}', b""])
def test_postmark_malformed_body(body):
    with pytest.raises(BadPayload):
        esp.raw_mime("postmark", body, {})


def test_postmark_outbound_webhook_is_not_a_mail():
    body = json.dumps({"RecordType": "Bounce", "MessageID": "x", "Type": "HardBounce"}).encode()
    with pytest.raises(BadPayload, match="Bounce webhook"):
        esp.raw_mime("postmark", body, {})


# -- SendGrid --------------------------------------------------------------------------------------

SENDGRID_SECRETS = {"esp_webhook_password": PASSWORD}


def test_sendgrid_verifies_and_gives_the_exact_mime():
    request = make_request(SENDGRID_BODY, SENDGRID_TYPE, password=PASSWORD)
    esp.verify("sendgrid", request, SENDGRID_SECRETS)
    assert_is_the_mail(
        esp.raw_mime("sendgrid", SENDGRID_BODY, esp.journal_meta("sendgrid", request))
    )


def test_sendgrid_wrong_or_missing_password():
    assert (
        rejected(
            "sendgrid", make_request(SENDGRID_BODY, SENDGRID_TYPE, password="x"), SENDGRID_SECRETS
        ).status
        == 401
    )
    assert (
        rejected("sendgrid", make_request(SENDGRID_BODY, SENDGRID_TYPE), SENDGRID_SECRETS).status
        == 401
    )


def test_sendgrid_channel_without_secrets_refuses_everything():
    request = make_request(SENDGRID_BODY, SENDGRID_TYPE, password=PASSWORD)
    assert rejected("sendgrid", request, {}).status == 403


@pytest.fixture(scope="module")
def sendgrid_key():
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()  # as SendGrid shows it


def sendgrid_signed(private, body: bytes, stamp: int) -> dict[str, str]:
    signature = private.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
        "x-twilio-email-event-webhook-timestamp": str(stamp),
    }


def test_sendgrid_signed_security_policy(sendgrid_key):
    private, public = sendgrid_key
    now = 1767345600
    headers = sendgrid_signed(private, SENDGRID_BODY, now)
    request = make_request(SENDGRID_BODY, SENDGRID_TYPE, headers=headers)
    esp.verify("sendgrid", request, {"esp_sendgrid_public_key": public}, now=now + 10)
    # Both configured: both are required.
    both = {"esp_sendgrid_public_key": public, "esp_webhook_password": PASSWORD}
    assert rejected("sendgrid", request, both, now=now).status == 401
    with_auth = make_request(SENDGRID_BODY, SENDGRID_TYPE, headers=headers, password=PASSWORD)
    esp.verify("sendgrid", with_auth, both, now=now)


def test_sendgrid_signature_over_another_body_fails(sendgrid_key):
    private, public = sendgrid_key
    headers = sendgrid_signed(private, SENDGRID_BODY, 1767345600)
    tampered = SENDGRID_BODY.replace(b"Bestelling 4411", b"Bestelling 4412")
    request = make_request(tampered, SENDGRID_TYPE, headers=headers)
    error = rejected("sendgrid", request, {"esp_sendgrid_public_key": public}, now=1767345600)
    assert error.status == 401
    assert "does not match" in error.reason


def test_sendgrid_signature_stale_or_missing(sendgrid_key):
    private, public = sendgrid_key
    secrets = {"esp_sendgrid_public_key": public}
    headers = sendgrid_signed(private, SENDGRID_BODY, 1767345600)
    request = make_request(SENDGRID_BODY, SENDGRID_TYPE, headers=headers)
    assert "5 minutes" in rejected("sendgrid", request, secrets, now=1767345600 + 600).reason
    unsigned = make_request(SENDGRID_BODY, SENDGRID_TYPE)
    assert rejected("sendgrid", unsigned, secrets, now=1767345600).status == 401


def test_sendgrid_parsed_post_asks_for_the_raw_option():
    body = SENDGRID_BODY.replace(b'name="email"', b'name="text"')
    with pytest.raises(BadPayload, match="POST the raw, full MIME message"):
        esp.raw_mime("sendgrid", body, {"content_type": SENDGRID_TYPE})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{}", "application/json"), (b"garbage", SENDGRID_TYPE), (SENDGRID_BODY, "text/plain")],
)
def test_sendgrid_malformed_body(body, content_type):
    with pytest.raises(BadPayload):
        esp.raw_mime("sendgrid", body, {"content_type": content_type})


# -- Amazon SES through SNS ------------------------------------------------------------------------

SES_SECRETS = {"esp_webhook_password": PASSWORD, "esp_sns_topic_arn": TOPIC}
CERT_PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"


@pytest.fixture(scope="module")
def sns_signer():
    """An RSA key and a self-signed certificate standing in for Amazon SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, self_signed("sns.amazonaws.com", key=key)[0]


class CertServer:
    """Serves the certificate over HTTP on loopback and counts what was asked for."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.hits: list[str] = []
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                status = server.status if self.path == CERT_PATH else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/x-pem-file")
                self.end_headers()
                if status == 200:
                    self.wfile.write(server.pem)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def cert_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CERT_PATH}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def cert_server(sns_signer):
    server = CertServer(sns_signer[1])
    yield server
    server.close()


@pytest.fixture
def sns(cert_server, settings):
    """The certificate host check pointed at the local server, an empty certificate cache."""
    settings.LOKET_HTTP_ALLOW_PRIVATE = True
    settings.LOKET_SNS_CERT_URL_PATTERN = rf"http://127\.0\.0\.1:{cert_server.port}/[\w.-]+\.pem"
    cert_server.hits.clear()
    cert_server.status = 200
    esp.clear_certificate_cache()
    yield cert_server
    esp.clear_certificate_cache()


def sign_sns(doc: dict, key, version: str = "1") -> dict:
    """Sign like Amazon SNS: "<name>\\n<value>\\n" for the documented fields, in this order."""
    if doc["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{doc[name]}\n" for name in names if name in doc)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {**doc, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def ses_notification(cert_url: str, key, *, version: str = "1", message: dict | None = None):
    doc = json.loads((PAYLOADS / "sns-notification.json").read_text())
    note = (
        message if message is not None else json.loads((PAYLOADS / "ses-received.json").read_text())
    )
    doc["Message"] = json.dumps(note)
    doc["SigningCertURL"] = cert_url
    return sign_sns(doc, key, version)


def sns_request(doc: dict, *, password: str | None = PASSWORD) -> WebhookRequest:
    headers = {
        "x-amz-sns-message-type": doc.get("Type", ""),
        "x-amz-sns-message-id": doc.get("MessageId", ""),
        "x-amz-sns-topic-arn": doc.get("TopicArn", ""),
    }
    body = json.dumps(doc).encode()
    return make_request(body, "text/plain; charset=UTF-8", password=password, headers=headers)


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_verifies_and_gives_the_exact_mime(sns, sns_signer, version):
    doc = ses_notification(sns.cert_url, sns_signer[0], version=version)
    request = sns_request(doc)
    esp.verify("ses", request, SES_SECRETS)
    assert sns.hits == []  # verify() never touches the network
    meta = esp.journal_meta("ses", request)
    assert_is_the_mail(esp.raw_mime("ses", request.body, meta))
    assert esp.raw_mime("ses", request.body, meta) == MAIL
    assert sns.hits == [CERT_PATH]  # fetched once, then cached by URL


def test_ses_tampered_message_fails_the_signature(sns, sns_signer):
    doc = ses_notification(sns.cert_url, sns_signer[0])
    note = json.loads(doc["Message"])
    note["content"] = base64.b64encode(MAIL.replace(b"Bestelling", b"Betaling")).decode()
    doc["Message"] = json.dumps(note)
    request = sns_request(doc)
    esp.verify("ses", request, SES_SECRETS)  # the shape and topic are fine...
    with pytest.raises(BadPayload, match="signature does not match"):
        esp.raw_mime("ses", request.body, {})  # ...the signature is not


def test_ses_signature_from_another_key_fails(sns, sns_signer):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    doc = ses_notification(sns.cert_url, other, version="2")
    with pytest.raises(BadPayload, match="signature does not match"):
        esp.raw_mime("ses", json.dumps(doc).encode(), {})


def test_ses_certificate_on_another_host_is_refused_without_fetching(sns, sns_signer):
    # The same server under another name: the host check must refuse it before any request.
    url = f"http://localhost:{sns.port}{CERT_PATH}"
    doc = ses_notification(url, sns_signer[0])
    request = sns_request(doc)
    error = rejected("ses", request, SES_SECRETS)
    assert error.status == 403
    assert "certificate" in error.reason
    with pytest.raises(BadPayload, match="not on an Amazon SNS host"):
        esp.raw_mime("ses", request.body, {})
    assert sns.hits == []


def test_ses_default_certificate_host_check(settings):
    settings.LOKET_SNS_CERT_URL_PATTERN = ""
    allowed = esp._certificate_url_allowed
    assert allowed("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc123.pem")
    assert allowed("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem")
    for url in [
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc123.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.pem?x=.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
        None,
    ]:
        assert not allowed(url), url


def test_ses_wrong_topic(sns, sns_signer):
    doc = ses_notification(sns.cert_url, sns_signer[0])
    doc["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-else"
    error = rejected("ses", sns_request(doc), SES_SECRETS)
    assert error.status == 403
    assert "someone-else" in error.reason


def test_ses_wrong_or_missing_password(sns, sns_signer):
    doc = ses_notification(sns.cert_url, sns_signer[0])
    assert rejected("ses", sns_request(doc, password="nope"), SES_SECRETS).status == 401
    assert rejected("ses", sns_request(doc, password=None), SES_SECRETS).status == 401


def test_ses_raw_message_delivery_is_refused(sns, sns_signer):
    body = json.dumps(json.loads((PAYLOADS / "ses-received.json").read_text())).encode()
    request = make_request(body, password=PASSWORD, headers={"x-amz-sns-rawdelivery": "true"})
    error = rejected("ses", request, SES_SECRETS)
    assert error.status == 403
    assert "raw message delivery" in error.reason


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"Type": "Notification"}', b'{"a": 1}'])
def test_ses_malformed_body(sns, body):
    assert rejected("ses", make_request(body, password=PASSWORD), SES_SECRETS).status == 403
    with pytest.raises(BadPayload):
        esp.raw_mime("ses", body, {})
    assert sns.hits == []


def test_ses_subscription_confirmation(sns, sns_signer):
    doc = json.loads((PAYLOADS / "sns-subscription-confirmation.json").read_text())
    doc["SigningCertURL"] = sns.cert_url
    doc = sign_sns(doc, sns_signer[0])
    request = sns_request(doc)
    esp.verify("ses", request, SES_SECRETS)
    assert esp.raw_mime("ses", request.body, {}) is None  # signature checked, no mail
    assert sns.hits == [CERT_PATH]
    assert esp.subscribe_url(request.body) == doc["SubscribeURL"]
    # A forged SubscribeURL breaks the signature.
    forged = {**doc, "SubscribeURL": doc["SubscribeURL"].replace("Token=", "Token=0")}
    with pytest.raises(BadPayload, match="signature"):
        esp.raw_mime("ses", json.dumps(forged).encode(), {})


def test_subscribe_url_only_for_sns_confirmation_urls():
    doc = json.loads((PAYLOADS / "sns-subscription-confirmation.json").read_text())
    assert esp.subscribe_url(json.dumps(doc).encode()) == doc["SubscribeURL"]
    for url in [
        "https://evil.example/?Action=ConfirmSubscription&TopicArn=" + TOPIC + "&Token=1",
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
        + TOPIC
        + "&Token=1",
        "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&TopicArn=" + TOPIC + "&Token=1",
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
        "arn:aws:sns:eu-west-1:999999999999:other&Token=1",
    ]:
        assert esp.subscribe_url(json.dumps({**doc, "SubscribeURL": url}).encode()) is None, url
    assert esp.subscribe_url(json.dumps({**doc, "Type": "Notification"}).encode()) is None
    assert esp.subscribe_url(b"not json") is None


def test_ses_unsubscribe_confirmation_carries_no_mail(sns, sns_signer):
    doc = json.loads((PAYLOADS / "sns-subscription-confirmation.json").read_text())
    doc["Type"] = "UnsubscribeConfirmation"
    doc["SigningCertURL"] = sns.cert_url
    doc = sign_sns(doc, sns_signer[0], "2")
    assert esp.raw_mime("ses", json.dumps(doc).encode(), {}) is None
    assert esp.subscribe_url(json.dumps(doc).encode()) is None


def test_ses_s3_action_notification_says_to_use_the_sns_action(sns, sns_signer):
    note = json.loads((PAYLOADS / "ses-received.json").read_text())
    del note["content"]
    note["receipt"]["action"] = {
        "type": "S3",
        "topicArn": TOPIC,
        "bucketName": "loket-mail",
        "objectKey": "inbound/o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
    }
    doc = ses_notification(sns.cert_url, sns_signer[0], message=note)
    with pytest.raises(BadPayload, match="SNS action"):
        esp.raw_mime("ses", json.dumps(doc).encode(), {})


def test_ses_utf8_encoding_is_taken_as_text(sns, sns_signer):
    note = json.loads((PAYLOADS / "ses-received.json").read_text())
    note["content"] = MAIL.decode("ascii")
    note["receipt"]["action"]["encoding"] = "UTF8"
    doc = ses_notification(sns.cert_url, sns_signer[0], message=note)
    assert esp.raw_mime("ses", json.dumps(doc).encode(), {}) == MAIL


def test_ses_sending_notification_carries_no_mail(sns, sns_signer):
    note = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": {}}
    doc = ses_notification(sns.cert_url, sns_signer[0], message=note)
    assert esp.raw_mime("ses", json.dumps(doc).encode(), {}) is None


def test_ses_certificate_unavailable_is_retried_not_failed(sns, sns_signer):
    sns.status = 503
    doc = ses_notification(sns.cert_url, sns_signer[0])
    with pytest.raises(esp.SnsCertificateUnavailable, match="HTTP 503"):
        esp.raw_mime("ses", json.dumps(doc).encode(), {})
    assert not issubclass(esp.SnsCertificateUnavailable, BadPayload)
    sns.status = 200
    assert esp.raw_mime("ses", json.dumps(doc).encode(), {}) == MAIL  # nothing cached on failure


def test_ses_private_certificate_host_stays_blocked(sns, sns_signer, settings):
    """The pattern admits the loopback URL, but loket.http's SSRF guard still applies."""
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    doc = ses_notification(sns.cert_url, sns_signer[0])
    with pytest.raises(esp.SnsCertificateUnavailable):
        esp.raw_mime("ses", json.dumps(doc).encode(), {})
    assert sns.hits == []


# -- setup-form checks -----------------------------------------------------------------------------


def test_check_secrets(sendgrid_key):
    esp.check_secrets("mailgun", MAILGUN_SECRETS)
    esp.check_secrets("postmark", POSTMARK_SECRETS)
    esp.check_secrets("sendgrid", {"esp_sendgrid_public_key": sendgrid_key[1]})
    esp.check_secrets("ses", SES_SECRETS)
    for name, secrets in [
        ("mailgun", {}),
        ("postmark", {"esp_webhook_password": ""}),
        ("sendgrid", {}),
        ("sendgrid", {"esp_sendgrid_public_key": "bm90IGEga2V5"}),
        ("ses", {"esp_webhook_password": PASSWORD, "esp_sns_topic_arn": "loket-inbound"}),
        ("sparkpost", {}),
    ]:
        with pytest.raises(InvalidConfig):
            esp.check_secrets(name, secrets)

"""compose() and its helpers: every message is parsed back with the standard library."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser, Parser

import pytest

from loket.connectors.email.composing import (
    Address,
    OutgoingAttachment,
    OutgoingEmail,
    compose,
    envelope_recipients,
    html_to_text,
    new_message_id,
    references_for,
    reply_subject,
)

DOMAIN = "support.example.com"


def make(**overrides) -> OutgoingEmail:
    values = {
        "sender": Address("Acme Support", "support@example.com"),
        "to": (Address("Bob Jansen", "bob@example.net"),),
        "subject": "Your order",
        "text": "Hello Bob,\n\nIt ships today.\n",
    }
    values.update(overrides)
    return OutgoingEmail(**values)


def wire(mail: OutgoingEmail) -> bytes:
    return compose(mail, domain=DOMAIN).as_bytes()


def parsed(mail: OutgoingEmail) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(wire(mail))


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")


def content(part: EmailMessage) -> str | bytes:
    """The decoded content, with the wire's CRLF line ends back to "\\n" for text."""
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


# --- headers and structure -----------------------------------------------------------------------


def test_a_plain_reply_has_every_header_and_crlf_lines():
    when = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)
    mail = make(
        cc=(Address("Carol", "carol@example.org"),),
        reply_to=Address("Acme Support", "support+t0k3n@example.com"),
        in_reply_to="orig-1@mail.example.net",
        references=("root@mail.example.net", "orig-1@mail.example.net"),
        message_id="loket.abc@support.example.com",
        date=when,
        headers=(("X-Loket-Conversation", "1234"),),
    )
    raw = wire(mail)
    message = BytesParser(policy=policy.default).parsebytes(raw)

    assert message["Message-ID"] == "<loket.abc@support.example.com>"
    assert message["Date"].datetime == when
    assert message["From"] == "Acme Support <support@example.com>"
    assert message["To"] == "Bob Jansen <bob@example.net>"
    assert message["Cc"] == "Carol <carol@example.org>"
    assert message["Reply-To"] == "Acme Support <support+t0k3n@example.com>"
    assert message["Subject"] == "Your order"
    assert message["In-Reply-To"] == "<orig-1@mail.example.net>"
    assert message["References"] == "<root@mail.example.net> <orig-1@mail.example.net>"
    assert message["MIME-Version"] == "1.0"
    assert message["X-Loket-Conversation"] == "1234"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert content(message) == "Hello Bob,\n\nIt ships today.\n"
    assert "Auto-Submitted" not in message
    assert "X-Auto-Response-Suppress" not in message
    assert "Precedence" not in message
    # SMTP line ends everywhere, and nothing but ASCII on the wire.
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()


def test_a_message_id_is_generated_when_none_is_given():
    first, second = parsed(make()), parsed(make())
    pattern = r"<loket\.[0-9a-f]{32}@support\.example\.com>"
    assert re.fullmatch(pattern, first["Message-ID"])
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Date"].datetime.tzinfo is not None
    assert abs(first["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_naive_date_is_taken_as_utc_and_an_aware_one_kept():
    assert parsed(make(date=datetime(2025, 1, 2, 3, 4, 5)))["Date"].datetime == datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    amsterdam = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parsed(make(date=amsterdam))["Date"].datetime == amsterdam


def test_bcc_is_never_in_the_headers_but_is_in_the_envelope():
    mail = make(
        cc=(Address("Carol", "carol@example.org"),),
        bcc=(Address("Secret Boss", "boss@example.com"), Address("", "audit@example.com")),
    )
    raw = wire(mail)
    assert b"boss@example.com" not in raw
    assert b"audit@example.com" not in raw
    assert b"Secret" not in raw
    assert not re.search(r"(?im)^bcc:", header_block(raw))  # a header, not hex in an id
    assert envelope_recipients(mail) == [
        "bob@example.net",
        "carol@example.org",
        "boss@example.com",
        "audit@example.com",
    ]


def test_envelope_recipients_drop_case_insensitive_repeats():
    mail = make(
        to=(Address("Bob", "Bob@Example.net"), Address("Ann", "ann@example.net")),
        cc=(Address("Bob again", "bob@example.NET"),),
        bcc=(Address("", "ANN@example.net"), Address("", "zed@example.net")),
    )
    assert envelope_recipients(mail) == ["Bob@Example.net", "ann@example.net", "zed@example.net"]


def test_html_makes_multipart_alternative_text_first():
    message = parsed(make(text="Plain version", html="<p>HTML <b>version</b></p>"))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[0]) == "Plain version\n"
    assert content(parts[1]) == "<p>HTML <b>version</b></p>\n"
    assert all(p.get_content_charset() == "utf-8" for p in parts)


def test_only_html_gets_a_text_alternative_made_from_it():
    message = parsed(
        make(
            text="",
            html="<p>Hi <b>Bob</b>,</p><p>See <a href='https://x.example/o/1'>your order</a></p>",
        )
    )
    assert content(message.get_body(("plain",))) == (
        "Hi Bob,\n\nSee your order (https://x.example/o/1)\n"
    )


def test_attachments_make_multipart_mixed_with_base64_parts():
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 20
    message = parsed(
        make(
            html="<p>Invoice attached</p>",
            attachments=(
                OutgoingAttachment("invoice.pdf", "application/pdf", pdf),
                OutgoingAttachment("notes.txt", "text/plain; charset=utf-8", "ünïcode".encode()),
            ),
        )
    )
    assert message.get_content_type() == "multipart/mixed"
    body, *attachments = message.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        ("invoice.pdf", "application/pdf"),
        ("notes.txt", "text/plain"),
    ]
    assert content(attachments[0]) == pdf
    assert attachments[0]["Content-Transfer-Encoding"] == "base64"
    assert attachments[0].get_content_disposition() == "attachment"
    assert attachments[1].get_payload(decode=True) == "ünïcode".encode()


def test_attachment_names_and_types_are_sanitised():
    message = parsed(
        make(
            attachments=(
                OutgoingAttachment("../../etc/passwd", "bogus", b"x"),
                OutgoingAttachment("C:\\Users\\me\\evil\r\nX-Injected: 1.txt", "text/plain", b"x"),
                OutgoingAttachment("", "application/pdf", b"x"),
                OutgoingAttachment("forwarded.eml", "message/rfc822", b"From: a@b\r\n\r\nhi\r\n"),
            )
        )
    )
    names = [(a.get_filename(), a.get_content_type()) for a in message.iter_attachments()]
    assert names == [
        ("passwd", "application/octet-stream"),
        ("evil X-Injected: 1.txt", "text/plain"),
        ("attachment", "application/pdf"),
        ("forwarded.eml", "application/octet-stream"),
    ]
    assert "X-Injected" not in message


# --- internationalisation -----------------------------------------------------------------------

NAMES = [
    "Jörg Müller-Lüdenscheidt",
    "Zoë Ångström",
    "Françoise d'Aubigné",
    "山田 太郎",
    "Ελένη Παπαδοπούλου",
    'Smith, John "JJ"',
    "O'Brien (Sales) <team>",
    "Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé",
]


@pytest.mark.parametrize("name", NAMES)
def test_display_names_round_trip(name):
    mail = make(
        sender=Address(name, "support@example.com"),
        to=(Address(name, "bob@example.net"), Address("Ann", "ann@example.net")),
        reply_to=Address(name, "support+x@example.com"),
    )
    raw = wire(mail)
    assert raw.isascii()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["From"].addresses[0].display_name == name
    assert message["From"].addresses[0].addr_spec == "support@example.com"
    assert [a.display_name for a in message["To"].addresses] == [name, "Ann"]
    assert message["Reply-To"].addresses[0].display_name == name


SUBJECTS = [
    "Bestelling #123 is onderweg",
    "Ihre Bestellung: Größe ändern",
    "Réf : problème de facturation — urgent",
    "注文について",
    "Re: Héllo wörld " * 12,
    "emoji 🎉 party 🎉" * 5,
    "x" * 400,
    "A" + "ö" * 300,
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subjects_round_trip_and_fold(subject):
    raw = wire(make(subject=subject))
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == " ".join(subject.split())
    assert raw.isascii()
    assert max(len(line) for line in header_block(raw).split("\r\n")) <= 998


def test_non_ascii_attachment_filenames_use_rfc_2231():
    name = "Offerte für Müller — März 2025 (definitief) ✓ " * 3 + ".pdf"
    raw = wire(make(attachments=(OutgoingAttachment(name, "application/pdf", b"%PDF"),)))
    assert b"filename*" in raw  # RFC 2231 parameter, not an encoded-word
    assert b"=?utf-8?" not in raw.split(b"Content-Disposition", 1)[1].split(b"\r\n\r\n")[0]
    (attachment,) = BytesParser(policy=policy.default).parsebytes(raw).iter_attachments()
    assert attachment.get_filename() == " ".join(name.split()).strip(". ")


def test_non_ascii_bodies_are_7bit_encoded_and_round_trip():
    text = "Grüße aus Köln — ça va? 日本語\n" * 3
    html = "<p>Grüße aus Köln — ça va? 日本語</p>"
    raw = wire(make(text=text, html=html))
    assert raw.isascii()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert content(message.get_body(("plain",))) == text
    assert content(message.get_body(("html",))) == html + "\n"
    for part in message.iter_parts():
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")


def test_an_idn_domain_is_written_in_punycode():
    message = parsed(make(to=(Address("Jörg", "jorg@müller.de"),)))
    assert message["To"].addresses[0].addr_spec == "jorg@xn--mller-kva.de"


def test_a_non_ascii_mailbox_switches_to_smtputf8():
    message = compose(make(to=(Address("Jörg", "jörg@müller.de"),)), domain=DOMAIN)
    raw = message.as_bytes()
    assert message.policy.utf8
    assert "jörg@müller.de".encode() in raw
    assert "To: Jörg <jörg@müller.de>\r\n" in raw.decode("utf-8")
    # The standard parser reads bytes as ASCII; a UTF-8 aware reader decodes first.
    reparsed = Parser(policy=policy.SMTPUTF8).parsestr(raw.decode("utf-8"))
    assert reparsed["To"].addresses[0].addr_spec == "jörg@müller.de"
    assert reparsed["To"].addresses[0].display_name == "Jörg"


# --- line lengths ------------------------------------------------------------------------------


def test_no_line_over_998_even_with_a_100_kb_single_line_html():
    html = "<p>" + "".join(f"<span>word{i} ü</span>" for i in range(6000)) + "</p>"
    assert len(html) > 100_000 and "\n" not in html
    text = "y" * 50_000
    raw = wire(
        make(
            text=text,
            html=html,
            references=tuple(f"{'r' * 200}.{i}@example.net" for i in range(30)),
            headers=(("X-Long", "z" * 2000),),
        )
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert content(message.get_body(("html",))) == html + "\n"
    assert content(message.get_body(("plain",))) == text + "\n"


def test_long_threading_headers_fold_between_ids_and_are_never_encoded():
    ids = tuple(f"{i}.{'a' * 60}@mail.example.net" for i in range(25))
    raw = wire(make(in_reply_to=ids[-1], references=ids))
    headers = header_block(raw)
    assert "=?" not in headers
    references = BytesParser(policy=policy.default).parsebytes(raw)["References"]
    kept = re.findall(r"<([^>]+)>", references)
    assert kept == [ids[0], *ids[-20:]]
    assert all(len(line) <= 998 for line in headers.split("\r\n"))


# --- header injection ----------------------------------------------------------------------------


def test_header_injection_in_text_is_neutralised():
    mail = make(
        sender=Address("Eve\r\nBcc: victim@example.org", "support@example.com"),
        to=(Address("Bob\nX-Evil: 1", "bob@example.net"),),
        subject="Hello\r\nBcc: victim@example.org\r\n\r\nInjected body",
        headers=(("X-Loket-Conversation", "12\r\nBcc: victim@example.org"),),
        reply_to=Address("Eve\u2028Cc: x@example.org", "support@example.com"),
    )
    raw = wire(mail)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert "Bcc" not in message
    assert "X-Evil" not in message
    assert "Cc" not in message
    assert message["Subject"] == "Hello Bcc: victim@example.org Injected body"
    assert message["X-Loket-Conversation"] == "12 Bcc: victim@example.org"
    assert message["From"].addresses[0].display_name == "Eve Bcc: victim@example.org"
    assert content(message) == mail.text
    assert [a.addr_spec for a in message["To"].addresses] == ["bob@example.net"]


def test_text_that_looks_like_an_encoded_word_is_not_decoded_by_clients():
    fake = "=?utf-8?q?Your_bank?="
    raw = wire(make(sender=Address(fake, "support@example.com"), subject=f"Hi {fake}"))
    assert fake.encode() not in raw
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["From"].addresses[0].display_name == fake
    assert message["Subject"] == f"Hi {fake}"


@pytest.mark.parametrize(
    "address",
    [
        "bob@example.net\r\nBcc: victim@example.org",
        "bob@example.net, victim@example.org",
        "Bob <bob@example.net>",
        "bob example.net",
        "no-at-sign",
        "@example.net",
        "bob@",
        "bob@@example.net",
    ],
)
def test_malformed_addresses_are_refused(address):
    with pytest.raises(ValueError, match="invalid email address"):
        compose(make(to=(Address("Bob", address),)), domain=DOMAIN)
    with pytest.raises(ValueError, match="invalid email address"):
        compose(make(bcc=(Address("", address),)), domain=DOMAIN)


@pytest.mark.parametrize(
    "name", ["X-Bad\r\nBcc", "X Bad", "X-Bad:", "", "Bcc", "From", "content-type", "Message-ID"]
)
def test_bad_or_reserved_extra_header_names_are_refused(name):
    with pytest.raises(ValueError):
        compose(make(headers=((name, "1"),)), domain=DOMAIN)


def test_malformed_message_ids_are_refused_or_dropped():
    with pytest.raises(ValueError, match="Message-ID"):
        compose(make(message_id="abc\r\nBcc: x@y"), domain=DOMAIN)
    message = parsed(make(in_reply_to="not an id", references=("<ok@x.example>", "bad id\r\n")))
    assert "In-Reply-To" not in message
    assert message["References"] == "<ok@x.example>"


def test_in_reply_to_alone_also_gives_references():
    message = parsed(make(in_reply_to="<parent@x.example>"))
    assert message["In-Reply-To"] == "<parent@x.example>"
    assert message["References"] == "<parent@x.example>"


# --- automatic mail -----------------------------------------------------------------------------


def test_auto_submitted_only_for_automatic_mail():
    human = parsed(make())
    assert "Auto-Submitted" not in human and "X-Auto-Response-Suppress" not in human
    for value in ("auto-replied", "auto-generated"):
        automatic = parsed(make(auto_submitted=value))
        assert automatic["Auto-Submitted"] == value
        assert automatic["X-Auto-Response-Suppress"] == "All"
        assert "Precedence" not in automatic
    with pytest.raises(ValueError, match="Auto-Submitted"):
        compose(make(auto_submitted="yes please"), domain=DOMAIN)


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order question", "Re: Order question [#1234]"),
        ("Re: Order question", "Re: Order question [#1234]"),
        ("RE: Order question", "Re: Order question [#1234]"),
        ("re:Order question", "Re: Order question [#1234]"),
        ("Re: Re: RE: Order question", "Re: Order question [#1234]"),
        ("Re[3]: Order question", "Re: Order question [#1234]"),
        ("AW: Bestellung", "Re: Bestellung [#1234]"),
        ("Aw: AW: Bestellung", "Re: Bestellung [#1234]"),
        ("Antw: Bestelling", "Re: Bestelling [#1234]"),
        ("Antwoord: Bestelling", "Re: Bestelling [#1234]"),
        ("SV: Beställning", "Re: Beställning [#1234]"),
        ("Réf. : Commande", "Re: Commande [#1234]"),
        ("RÉF: Commande", "Re: Commande [#1234]"),
        ("TR: Commande", "Re: TR: Commande [#1234]"),
        ("Fwd: Order question", "Re: Fwd: Order question [#1234]"),
        ("WG: Bestellung", "Re: WG: Bestellung [#1234]"),
        ("Re: Order question [#1234]", "Re: Order question [#1234]"),
        ("[#1234] Order question", "Re: [#1234] Order question"),
        ("Re: Order question [#99]", "Re: Order question [#99] [#1234]"),
        ("Regarding: order", "Re: Regarding: order [#1234]"),
        ("  Re:   spaced\r\n  out  ", "Re: spaced out [#1234]"),
        ("", "Re: [#1234]"),
        ("Re:", "Re: [#1234]"),
    ],
)
def test_reply_subject(subject, expected):
    assert reply_subject(subject, 1234) == expected


def test_reply_subject_without_a_number():
    assert reply_subject("AW: Bestellung", None) == "Re: Bestellung"
    assert reply_subject("Re: Re: x [#5]", None) == "Re: x [#5]"
    assert reply_subject("", None) == "Re:"


def test_references_for_appends_the_parent_and_strips_brackets():
    assert references_for(["<a@x>", "b@x"], "<c@x>") == ("a@x", "b@x", "c@x")
    assert references_for([], "c@x") == ("c@x",)
    assert references_for("<a@x> <b@x>", "c@x") == ("a@x", "b@x", "c@x")  # a raw header
    assert references_for(["a@x", "b@x"], "b@x") == ("a@x", "b@x")  # no repeats
    assert references_for(["junk", "<bad id>", "a@x"], "") == ("a@x",)


def test_references_for_is_bounded_to_the_root_and_the_last_20():
    parents = [f"m{i}@x" for i in range(100)]
    result = references_for(parents, "parent@x")
    assert len(result) == 21
    assert result[0] == "m0@x"
    assert result[1:] == (*parents[-19:], "parent@x")


def test_new_message_id():
    first = new_message_id("Support.Example.com")
    assert re.fullmatch(r"loket\.[0-9a-f]{32}@support\.example\.com", first)
    assert first != new_message_id("support.example.com")
    assert new_message_id("müller.de").endswith("@xn--mller-kva.de")
    for bad in ("", "exa mple.com", "a@b", "x\r\ny"):
        with pytest.raises(ValueError):
            new_message_id(bad)


def test_html_to_text():
    html = """<html><head><style>p { color: red }</style><title>T</title></head><body>
    <h1>Order   shipped</h1>
    <p>Hello&nbsp;Bob,<br>your order is on its way &amp; arrives soon.</p>
    <ul><li>Shoes</li><li>Socks</li></ul>
    <ol><li>Wait</li><li>Unpack</li></ol>
    <blockquote><p>Where is my order?</p></blockquote>
    <p>Track it <a href="https://track.example/1">here</a> or at https://track.example/1
    <a href="https://track.example/2">https://track.example/2</a></p>
    <script>alert("no")</script>
    <p><img src="x.png" alt="Logo"></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Order shipped\n"
        "\n"
        "Hello Bob,\n"
        "your order is on its way & arrives soon.\n"
        "\n"
        "- Shoes\n"
        "- Socks\n"
        "\n"
        "1. Wait\n"
        "2. Unpack\n"
        "\n"
        "> Where is my order?\n"
        "\n"
        "Track it here (https://track.example/1) or at https://track.example/1"
        " https://track.example/2\n"
        "\n"
        "Logo\n"
    )
    assert html_to_text("") == ""
    assert html_to_text("<p>  </p>") == ""

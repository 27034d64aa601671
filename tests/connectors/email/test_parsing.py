"""The email parser (loket.connectors.email.parsing): pure Python, no database.

The corpus is tests/connectors/email/corpus/*.eml: hand-made, realistic messages (Dutch,
English, German and French customer service; CRLF or LF as real mail has). What parsing each
one must give is in corpus/expected.json, a data-only manifest meant for reuse (an end-to-end
ingest test can iterate the same entries). One entry per file, keyed by file name:

    always present
      message_id       str           ParsedEmail.message_id ("" when none or invalid)
      subject          str           exact (left out only when subject_startswith/_length say it)
      sender           str | null    sender.address
      quoted           bool          quoted_text is not empty
      attachments      [{filename, content_type, inline}]   exact, in order
      skipped          int           len(skipped_attachments)
      auto_submitted   bool
      bounce           null | {original_message_id, recipient, status, permanent}
      authentication   null | {authserv_id, spf, dkim, dmarc}
      defects          bool          defects is not empty
    optional
      options          {max_attachment_bytes?, trusted_authserv_ids?}   parse_email keywords
      sender_name, date (ISO 8601), to / reply_to (addresses), to_names / cc_names,
      in_reply_to / references (exact lists), references_count / _first / _last,
      subject_startswith, subject_length, auto_reason (exact), skipped_filenames,
      html (bool: html not empty), html_contains, text_equals,
      visible_contains / visible_not_contains (on visible_text), quoted_contains,
      quoted_html (bool), visible_html_contains / visible_html_not_contains
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loket.connectors.email.parsing import (
    ParsedEmail,
    UnparseableEmail,
    normalise_message_id,
    parse_email,
    safe_filename,
    split_quoted,
    split_quoted_html,
)

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
EML_FILES = sorted(p.name for p in CORPUS.glob("*.eml"))

REQUIRED = {
    "message_id",
    "sender",
    "quoted",
    "attachments",
    "skipped",
    "auto_submitted",
    "bounce",
    "authentication",
    "defects",
}
OPTIONAL = {
    "options",
    "subject",
    "sender_name",
    "date",
    "to",
    "reply_to",
    "to_names",
    "cc_names",
    "in_reply_to",
    "references",
    "references_count",
    "references_first",
    "references_last",
    "subject_startswith",
    "subject_length",
    "auto_reason",
    "skipped_filenames",
    "html",
    "html_contains",
    "text_equals",
    "visible_contains",
    "visible_not_contains",
    "quoted_contains",
    "quoted_html",
    "visible_html_contains",
    "visible_html_not_contains",
}


def parse_file(name: str) -> ParsedEmail:
    options = MANIFEST.get(name, {}).get("options", {})
    return parse_email((CORPUS / name).read_bytes(), **options)


def _strings(value: object):
    """Every str inside a ParsedEmail (fields, tuples, nested dataclasses)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _strings(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))


def assert_storable(parsed: ParsedEmail) -> None:
    """What the core stores must be valid UTF-8 without NUL (PostgreSQL refuses both)."""
    for s in _strings(parsed):
        s.encode("utf-8")
        assert "\x00" not in s
    assert not [d for d in parsed.defects if d.startswith("internal error")]


# --- the corpus -------------------------------------------------------------------------


def test_manifest_and_corpus_match():
    assert len(EML_FILES) >= 45
    assert set(MANIFEST) == set(EML_FILES)
    for name, entry in MANIFEST.items():
        assert set(entry) >= REQUIRED, (name, REQUIRED - set(entry))
        assert set(entry) <= REQUIRED | OPTIONAL, (name, set(entry) - REQUIRED - OPTIONAL)
        assert "subject" in entry or "subject_startswith" in entry, name


@pytest.mark.parametrize("name", EML_FILES)
def test_corpus(name):
    want = MANIFEST[name]
    got = parse_file(name)
    assert_storable(got)

    assert got.message_id == want["message_id"]
    if "subject" in want:
        assert got.subject == want["subject"]
    if "subject_startswith" in want:
        assert got.subject.startswith(want["subject_startswith"])
    if "subject_length" in want:
        assert len(got.subject) == want["subject_length"]
    assert (got.sender.address if got.sender else None) == want["sender"]
    if "sender_name" in want:
        assert got.sender is not None and got.sender.name == want["sender_name"]
    if "date" in want:
        assert got.date == datetime.fromisoformat(want["date"])
    if got.date is not None:
        assert got.date.tzinfo is not None
    for key, field in (("to", "to"), ("reply_to", "reply_to")):
        if key in want:
            assert [a.address for a in getattr(got, field)] == want[key]
    if "to_names" in want:
        assert [a.name for a in got.to] == want["to_names"]
    if "cc_names" in want:
        assert [a.name for a in got.cc] == want["cc_names"]
    if "in_reply_to" in want:
        assert list(got.in_reply_to) == want["in_reply_to"]
    if "references" in want:
        assert list(got.references) == want["references"]
    if "references_count" in want:
        assert len(got.references) == want["references_count"]
    if "references_first" in want:
        assert got.references[0] == want["references_first"]
    if "references_last" in want:
        assert got.references[-1] == want["references_last"]

    if "html" in want:
        assert bool(got.html) == want["html"]
    for needle in want.get("html_contains", []):
        assert needle in got.html
    if "text_equals" in want:
        assert got.text == want["text_equals"]
    for needle in want.get("visible_contains", []):
        assert needle in got.visible_text
    for needle in want.get("visible_not_contains", []):
        assert needle not in got.visible_text
    for needle in want.get("quoted_contains", []):
        assert needle in got.quoted_text
    assert bool(got.quoted_text) == want["quoted"]
    if got.text.strip():
        assert got.visible_text.strip(), "content above a quote is never hidden"
    if "quoted_html" in want:
        assert bool(got.quoted_html) == want["quoted_html"]
    for needle in want.get("visible_html_contains", []):
        assert needle in got.visible_html
    for needle in want.get("visible_html_not_contains", []):
        assert needle not in got.visible_html
    if not got.html:
        assert got.visible_html == got.quoted_html == ""

    attachments = [
        {"filename": a.filename, "content_type": a.content_type, "inline": a.inline}
        for a in got.attachments
    ]
    assert attachments == want["attachments"]
    assert len(got.skipped_attachments) == want["skipped"]
    if "skipped_filenames" in want:
        assert [s.filename for s in got.skipped_attachments] == want["skipped_filenames"]

    assert got.auto_submitted == want["auto_submitted"]
    assert bool(got.auto_reason) == got.auto_submitted
    if "auto_reason" in want:
        assert got.auto_reason == want["auto_reason"]
    if want["bounce"] is None:
        assert got.bounce is None
    else:
        assert got.bounce is not None
        for key, value in want["bounce"].items():
            assert getattr(got.bounce, key) == value, key
        assert got.bounce.reason and len(got.bounce.reason) <= 500
        assert "\n" not in got.bounce.reason
    if want["authentication"] is None:
        assert got.authentication is None
    else:
        assert got.authentication is not None
        for key, value in want["authentication"].items():
            assert getattr(got.authentication, key) == value, key
    assert bool(got.defects) == want["defects"], got.defects
    assert re.fullmatch(r"[0-9a-f]{64}", got.content_hash)


# --- filenames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("invoice.pdf", "application/pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "application/octet-stream", "invoicefdp.exe"),
        ("\u2067photo\u2069.jpg\u200e", "image/jpeg", "photo.jpg"),
        ("\u061cbon\u200f.pdf", "application/pdf", "bon.pdf"),
        ("../../etc/passwd", "text/plain", "passwd"),
        ("..\\..\\Windows\\System32\\evil.dll", "application/x-msdownload", "evil.dll"),
        ("C:\\Users\\jan\\Documents\\offerte.docx", "application/msword", "offerte.docx"),
        ("re\u200bceipt\ufeff.pdf", "application/pdf", "receipt.pdf"),
        ("zero\u200c\u200dwidth\u2060.txt", "text/plain", "zerowidth.txt"),
        ("tab\tand\nnewline\x00.txt", "text/plain", "tabandnewline.txt"),
        ("CON.txt", "text/plain", "attachment.txt"),
        ("nul", "application/octet-stream", "attachment.bin"),
        ("lpt1.log.txt", "text/plain", "attachment.log.txt"),
        ("Console.txt", "text/plain", "Console.txt"),
        (".htaccess", "text/plain", "htaccess"),
        ("...hidden", "text/plain", "hidden"),
        ("rapport..final.pdf", "application/pdf", "rapport.final.pdf"),
        ('report<1>:"final"|?*.docx', "application/msword", "report1final.docx"),
        ("invoice.pdf. . .", "application/pdf", "invoice.pdf"),
        ("  spaced   out .pdf ", "application/pdf", "spaced out .pdf"),
        ("Cafe\u0301 menu.pdf", "application/pdf", "Caf\u00e9 menu.pdf"),  # NFC
        ("", "application/pdf", "attachment.pdf"),
        ("", "image/jpeg", "attachment.jpg"),
        ("", "application/octet-stream", "attachment.bin"),
        ("", "message/rfc822", "forwarded message.eml"),
        ("", "text/calendar", "invite.ics"),
        ("", "application/ms-tnef", "winmail.dat"),
        ("../", "text/plain", "attachment.txt"),
        ("\u202e\u200b", "image/png", "attachment.png"),
    ],
)
def test_safe_filename(raw, content_type, expected):
    assert safe_filename(raw, content_type) == expected


def test_safe_filename_caps_length_keeping_extension():
    name = safe_filename("x" * 300 + ".pdf", "application/pdf")
    assert len(name) == 150 and name.endswith(".pdf")
    assert len(safe_filename("y" * 400, "text/plain")) == 150
    # A multi-byte name is capped by characters, not bytes.
    assert safe_filename("\u00e9" * 200 + ".txt", "text/plain") == "\u00e9" * 146 + ".txt"


def test_filename_from_rfc2231_and_encoded_words_is_neutralised_too():
    raw = (
        b"From: a@example.com\r\nMessage-ID: <f@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*=utf-8''..%2F..%2Fx%E2%80%AEfdp.exe\r\n\r\nPDF\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?Q?CON=2Epdf?="\r\n\r\nPDF\r\n'
        b'--b\r\nContent-Type: image/png; name="foto van de schade.png"\r\n\r\nPNG\r\n'
        b"--b--\r\n"
    )
    names = [a.filename for a in parse_email(raw).attachments]
    assert names == ["xfdp.exe", "attachment.pdf", "foto van de schade.png"]


# --- message ids, references, dates -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<abc@example.com>", "abc@example.com"),
        ("  <abc@example.com>  ", "abc@example.com"),
        ("<abc@example.com> (added by relay)", "abc@example.com"),
        ("(comment (nested)) <abc@example.com>", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<abc@\r\n example.com>", "abc@example.com"),
        ("<CAF3+x=Y/z.1_2@mail.gmail.com>", "CAF3+x=Y/z.1_2@mail.gmail.com"),
        (
            "<000a01db8dd1$6c2b1e40$44815ac0$@example.co.uk>",
            "000a01db8dd1$6c2b1e40$44815ac0$@example.co.uk",
        ),
        ("<abc@[192.0.2.1]>", "abc@[192.0.2.1]"),
        ("<unterminated@example.com", "unterminated@example.com"),
        ("<no-at-sign>", ""),
        ("", ""),
        ("<>", ""),
        ("<a@b@c>", ""),
        ("<has space@example.com>", "hasspace@example.com"),
        ("<\u00fcnicode@example.com>", ""),
        ("<" + "x" * 300 + "@example.com>", ""),
        ("<nul\x00@example.com>", ""),
    ],
)
def test_normalise_message_id(raw, expected):
    assert normalise_message_id(raw) == expected


def _headers_only(*lines: str, body: str = "Hallo\r\n") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def test_references_are_deduplicated_and_capped_keeping_first_and_last():
    ids = [f"<m{i}@example.com>" for i in range(120)] + ["<m5@example.com>", "<m0@example.com>"]
    parsed = parse_email(
        _headers_only(
            "From: a@example.com",
            "Message-ID: <x@example.com>",
            "References: " + "\r\n ".join(ids),
            "In-Reply-To: <m119@example.com> (Jan's message of Monday)",
        )
    )
    assert len(parsed.references) == 50
    assert parsed.references[0] == "m0@example.com"
    assert parsed.references[1] == "m71@example.com"
    assert parsed.references[-1] == "m119@example.com"
    assert len(set(parsed.references)) == 50
    assert parsed.in_reply_to == ("m119@example.com",)
    assert any("References" in d for d in parsed.defects)


def test_thousands_of_references_and_a_huge_header_stay_cheap():
    ids = "\r\n ".join(f"<r{i}.{'x' * 40}@example.com>" for i in range(1500))
    raw = _headers_only("From: a@example.com", "References: " + ids, "Subject: " + "Lang " * 20000)
    start = time.perf_counter()
    parsed = parse_email(raw)
    assert time.perf_counter() - start < 2
    assert len(parsed.references) == 50
    assert parsed.references[-1].startswith("r1499.")
    assert len(parsed.subject) == 1000


def test_references_without_angle_brackets_and_several_headers():
    parsed = parse_email(
        _headers_only(
            "From: a@example.com",
            "References: one@example.com, two@example.com",
            "References: <three@example.com>",
        )
    )
    assert parsed.references == ("one@example.com", "two@example.com", "three@example.com")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 3 Mar 2025 10:12:00 +0100", "2025-03-03T10:12:00+01:00"),
        ("Mon, 3 Mar 2025 10:12:00", "2025-03-03T10:12:00+00:00"),
        ("3 Mar 2025 10:12 -0000", "2025-03-03T10:12:00+00:00"),
        ("Mon, 3 Mar 2025 10:12:00 CEST", "2025-03-03T10:12:00+00:00"),
        ("2025-03-03T10:12:00Z", "2025-03-03T10:12:00+00:00"),
        ("gisteren", None),
        ("Mon, 31 Feb 2025 10:12:00 +0100", None),
    ],
)
def test_date(value, expected):
    parsed = parse_email(_headers_only("From: a@example.com", f"Date: {value}"))
    if expected is None:
        assert parsed.date is None
        assert "unparseable Date header" in parsed.defects
    else:
        assert parsed.date == datetime.fromisoformat(expected)
        assert parsed.date.tzinfo is not None


def test_addresses():
    parsed = parse_email(
        _headers_only(
            'From: "Jansen, Piet" <Piet.Jansen@Example.NL>',
            "To: undisclosed-recipients:;",
            "Cc: Team: a@example.com, =?utf-8?Q?Ren=C3=A9e?= <renee@example.com>;, c@EXAMPLE.com",
            "Reply-To: Jan Jansen jan@example.nl",
            "Delivered-To: Support@Shop.Example",
            "X-Original-To: support+tickets@shop.example",
            "Delivered-To: support@shop.example",
        )
    )
    assert parsed.sender is not None
    assert parsed.sender.name == "Jansen, Piet"
    assert parsed.sender.address == "Piet.Jansen@example.nl"  # local part kept, domain lowered
    assert parsed.to == ()
    assert [(a.name, a.address) for a in parsed.cc] == [
        ("", "a@example.com"),
        ("Ren\u00e9e", "renee@example.com"),
        ("", "c@example.com"),
    ]
    assert [a.address for a in parsed.reply_to] == ["jan@example.nl"]
    assert parsed.delivered_to == ("support@shop.example", "support+tickets@shop.example")


# --- quotes and signatures: text --------------------------------------------------------

QUOTE_CASES_TEXT = {
    "en-attribution": (
        "Thanks, that works for me.\n\nOn Mon, 3 Mar 2025 at 10:12, Shop Support "
        "<support@shop.example> wrote:\n> Shall we send it on Friday?\n",
        "Thanks, that works for me.",
    ),
    "en-attribution-wrapped": (
        "Fine by me.\n\nOn Mon, Mar 3, 2025 at 10:12 AM Shop Support <support@shop.example>\n"
        "wrote:\n\n> Shall we send it on Friday?\n",
        "Fine by me.",
    ),
    "en-outlook": (
        "Please cancel it.\n\nFrom: Shop <support@shop.example>\nSent: Monday, March 3, 2025 "
        "10:12 AM\nTo: Jan <jan@example.com>\nSubject: RE: Order 1\n\nYour order has shipped.\n",
        "Please cancel it.",
    ),
    "en-original-message": (
        "See below.\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\n\nOld text\n",
        "See below.",
    ),
    "en-forwarded": (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Carrier <c@x.example>\n"
        "Date: Mon\nSubject: Parcel\n\nWe missed you.\n",
        "FYI",
    ),
    "nl-attribution": (
        "Dat is goed, dank u.\n\nOp ma 3 mrt 2025 om 10:12 schreef Klantenservice "
        "<support@shop.example>:\n> Zullen we vrijdag leveren?\n",
        "Dat is goed, dank u.",
    ),
    "nl-apple-attribution": (
        "Prima!\n\n> Op 3 mrt 2025 om 10:12 heeft Klantenservice <support@shop.example> het "
        "volgende geschreven:\n>\n> Zullen we vrijdag leveren?\n",
        "Prima!",
    ),
    "nl-outlook": (
        "Graag annuleren.\n\n________________________________\nVan: Klantenservice "
        "<support@shop.example>\nVerzonden: maandag 3 maart 2025 10:12\nAan: Jan "
        "<jan@example.nl>\nOnderwerp: RE: Bestelling 1\n\nUw bestelling is verzonden.\n",
        "Graag annuleren.",
    ),
    "nl-oorspronkelijk": (
        "Zie hieronder.\n\n-------- Oorspronkelijk bericht --------\nVan: Winkel\nDatum: "
        "maandag\nOnderwerp: Order\n\nOude tekst\n",
        "Zie hieronder.",
    ),
    "de-attribution": (
        "Danke, passt.\n\nAm Mo., 3. M\u00e4rz 2025 um 10:12 Uhr schrieb Kundenservice <\n"
        "kundenservice@shop.example>:\n\n> Sollen wir am Freitag liefern?\n",
        "Danke, passt.",
    ),
    "de-outlook": (
        "Bitte stornieren.\n\nVon: Kundenservice <kundenservice@shop.example>\nGesendet: "
        "Montag, 3. M\u00e4rz 2025 10:12\nAn: Jan <jan@example.de>\nBetreff: AW: Bestellung 1\n\n"
        "Ihre Bestellung ist unterwegs.\n",
        "Bitte stornieren.",
    ),
    "de-urspruengliche": (
        "Siehe unten.\n\n-----Urspr\u00fcngliche Nachricht-----\nVon: Shop\nGesendet: Montag\n\n"
        "Alter Text\n",
        "Siehe unten.",
    ),
    "fr-attribution": (
        "Merci, cela me convient.\n\nLe 3 mars 2025 \u00e0 10:12, Service client "
        "<reservations@shop.example> a \u00e9crit :\n> Pouvons-nous livrer vendredi ?\n",
        "Merci, cela me convient.",
    ),
    "fr-outlook": (
        "Merci d'annuler.\n\nDe : Service client <reservations@shop.example>\nEnvoy\u00e9 : "
        "lundi 3 mars 2025 10:12\n\u00c0 : Jan <jan@example.fr>\nObjet : RE: Commande 1\n\n"
        "Votre commande est partie.\n",
        "Merci d'annuler.",
    ),
    "fr-message-origine": (
        "Voir ci-dessous.\n\n-------- Message d'origine --------\nDe : Boutique\nDate : lundi\n\n"
        "Ancien texte\n",
        "Voir ci-dessous.",
    ),
    "bare-gt-block": (
        "Yes, size 42.\n\n> Which size do you need?\n> Kind regards, Sam\n",
        "Yes, size 42.",
    ),
    "name-wrote": (
        "Agreed.\n\nJan Jansen <jan@example.com> wrote:\n> Shall we meet on Friday?\n",
        "Agreed.",
    ),
}


@pytest.mark.parametrize("case", sorted(QUOTE_CASES_TEXT))
def test_split_quoted_text(case):
    text, visible = QUOTE_CASES_TEXT[case]
    got_visible, got_quoted = split_quoted(text)
    assert got_visible == visible
    assert got_quoted and got_quoted in text
    assert text.startswith(got_visible)


SIGNATURE_CASES = {
    "dash-dash-space": ("Order 12, please.\n\n-- \nJan Jansen\nACME B.V.\n", "Order 12, please."),
    "dash-dash": ("Order 12, please.\n\n--\nJan Jansen\n", "Order 12, please."),
    "en-iphone": ("Sure, thanks!\n\nSent from my iPhone\n", "Sure, thanks!"),
    "en-outlook-mobile": ("Sure.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n", "Sure."),
    "nl-iphone": ("Prima, dank je.\n\nVerstuurd vanaf mijn iPhone\n", "Prima, dank je."),
    "nl-verzonden": ("Prima.\n\nVerzonden vanaf mijn Samsung Galaxy\n", "Prima."),
    "de-iphone": ("Passt, danke.\n\nVon meinem iPhone gesendet\n", "Passt, danke."),
    "fr-iphone": ("Parfait, merci.\n\nEnvoy\u00e9 de mon iPhone\n", "Parfait, merci."),
    "signature-then-quote": (
        "Ja graag.\n\n-- \nLotte\n\nOp 3 mrt 2025 schreef Winkel <w@shop.example>:\n> Vraag?\n",
        "Ja graag.",
    ),
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_CASES))
def test_signatures_are_removed(case):
    text, visible = SIGNATURE_CASES[case]
    got_visible, got_quoted = split_quoted(text)
    assert got_visible == visible
    assert got_quoted


@pytest.mark.parametrize(
    "text",
    [
        "Just a question about order 12.\nThanks,\nJan",
        "Best regards,\nJan\n\nP.S. the box was damaged",
        "My order:\n- one lamp\n- two chairs\n",
        "From: the customer's point of view this is wrong.\nTo: be honest, I am upset.",
        "On Monday I will be home all day, please deliver then.",
        "",
    ],
)
def test_nothing_recognised_leaves_text_whole(text):
    assert split_quoted(text) == (text, "")


def test_a_long_block_after_a_dash_line_is_not_a_signature():
    text = "Intro\n--\n" + "".join(f"Line {i} of the real message\n" for i in range(30))
    assert split_quoted(text) == (text, "")


def test_a_mobile_signature_mid_message_stays():
    text = "Sent from my iPhone\nis how my last mail ended, sorry. The order is 12.\n"
    assert split_quoted(text) == (text, "")


@pytest.mark.parametrize(
    "text",
    [
        "---------- Forwarded message ---------\nFrom: Iris <i@example.nl>\nDate: Mon\n"
        "Subject: Pakket\nTo: Henk <h@example.nl>\n\nMijn pakket is niet aangekomen.\n",
        "> only a quote\n> nothing else\n",
        "On Mon, 3 Mar 2025, Shop wrote:\n> quoted\n",
        "Sent from my iPhone\n",
        "-- \nJan Jansen\n",
    ],
)
def test_a_message_that_is_all_quote_stays_visible(text):
    assert split_quoted(text) == (text, "")


def test_empty_reply_above_a_quote_keeps_the_signature_visible():
    visible, quoted = split_quoted("Sent from my iPhone\n\nOn Mon, Shop wrote:\n> Hi\n")
    assert visible == "Sent from my iPhone"
    assert quoted.startswith("On Mon, Shop wrote:")


def test_inline_answers_stay_visible():
    text = (
        "Hi,\n\nOn Tue, 4 Mar 2025, Sam wrote:\n> Which size?\n\nSize 42.\n\n"
        "> Still have the box?\n\nYes.\n\n> Kind regards,\n> Sam\n"
    )
    visible, quoted = split_quoted(text)
    assert "Size 42." in visible and "Yes." in visible
    assert "> Which size?" in visible
    assert quoted == "> Kind regards,\n> Sam"


def test_a_quoted_header_block_inside_inline_answers_does_not_cut():
    text = (
        "Answers inline.\n\n> From: Shop <s@shop.example>\n> Sent: Monday\n> To: me\n"
        "> Subject: Order\n> Which colour?\n\nBlue.\n"
    )
    assert split_quoted(text) == (text, "")


# --- quotes: HTML -----------------------------------------------------------------------

QUOTE_CASES_HTML = {
    "gmail-en": (
        '<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">On Mon, Mar 3, 2025 at 10:12 AM Shop &lt;s@shop.example&gt; '
        'wrote:<br></div><blockquote class="gmail_quote">Old</blockquote></div>',
        "Thanks!",
        "Old",
    ),
    "gmail-de-container": (
        '<div dir="ltr">Danke!</div><div class="gmail_quote gmail_quote_container">'
        '<div class="gmail_attr">Am Mo., 3. M\u00e4rz 2025 schrieb Shop:</div>'
        '<blockquote class="gmail_quote">Alt</blockquote></div>',
        "Danke!",
        "Alt",
    ),
    "apple-fr": (
        '<html><body dir="auto"><div dir="ltr">Merci !</div><div dir="ltr"><br>'
        '<blockquote type="cite">Le 3 mars 2025 \u00e0 10:12, Service &lt;s@shop.example&gt; '
        "a \u00e9crit&nbsp;:<br><br></blockquote></div>"
        '<blockquote type="cite"><div dir="ltr">Ancien</div></blockquote></body></html>',
        "Merci !",
        "Ancien",
    ),
    "thunderbird-en": (
        "<html><body><p>Yes please.</p>\n"
        '<div class="moz-cite-prefix">On 03-03-2025 10:12, Shop wrote:<br></div>\n'
        '<blockquote type="cite"><p>Old</p></blockquote>\n</body></html>',
        "Yes please.",
        "Old",
    ),
    "outlook-web-nl": (
        '<html><body><div>Dank u.</div><div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><b>Van:</b> Winkel<br><b>Verzonden:</b> maandag'
        "<br><b>Aan:</b> Jan<br><b>Onderwerp:</b> RE: Retour</div><div>Oud bericht</div>"
        "</body></html>",
        "Dank u.",
        "Oud bericht",
    ),
    "outlook-desktop-de": (
        '<html><body><div class="WordSection1"><p class="MsoNormal">Bitte stornieren.</p>'
        '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        '<p class="MsoNormal"><b>Von:</b> Shop &lt;s@shop.example&gt;<br><b>Gesendet:</b> '
        "Montag, 3. M\u00e4rz 2025 10:12<br><b>An:</b> Jan<br><b>Betreff:</b> Bestellung</p>"
        '</div></div><p class="MsoNormal">Alter Text</p></div></body></html>',
        "Bitte stornieren.",
        "Alter Text",
    ),
    "outlook-hr-fr": (
        "<div>Merci d'annuler.</div><hr><div><b>De :</b> Boutique<br><b>Envoy\u00e9 :</b> lundi"
        "<br><b>\u00c0 :</b> Jan<br><b>Objet :</b> Commande</div><div>Ancien texte</div>",
        "Merci d'annuler.",
        "Ancien texte",
    ),
    "outlook-mac-container": (
        '<div>Please cancel.</div><div id="mail-editor-reference-message-container">'
        "<b>From:</b> Shop<br><b>Date:</b> Monday<br><b>Subject:</b> Order<br>Old</div>",
        "Please cancel.",
        "Old",
    ),
    "yahoo": (
        '<div class="yahoo-style-wrap">Got it.</div><div class="ydp1yahoo_quoted yahoo_quoted">'
        "<div>On Monday, Shop wrote:</div><div>Old</div></div>",
        "Got it.",
        "Old",
    ),
    "attribution-without-marker": (
        "<div>Prima.</div><div>Op 3 mrt 2025 om 10:12 schreef Winkel &lt;w@shop.example&gt;:</div>"
        '<blockquote type="cite">Oud</blockquote>',
        "Prima.",
        "schreef",
    ),
    "own-wrote-line-stays": (
        '<div>Thanks! As I wrote:</div><blockquote type="cite">Old</blockquote>',
        "As I wrote:",
        "Old",
    ),
    "original-message-separator": (
        "<p>See below.</p><p>-----Original Message-----<br>From: Shop<br>Sent: Monday</p>"
        "<p>Old</p>",
        "See below.",
        "Old",
    ),
}


@pytest.mark.parametrize("case", sorted(QUOTE_CASES_HTML))
def test_split_quoted_html(case):
    html, visible_needle, quoted_needle = QUOTE_CASES_HTML[case]
    visible, quoted = split_quoted_html(html)
    assert visible_needle in visible
    assert quoted_needle in quoted
    assert quoted_needle not in visible


@pytest.mark.parametrize(
    "html",
    [
        "<p>Hello, a question about order 12.</p>",
        # A newsletter: rules and blockquotes that are not quotes.
        "<table><tr><td><h1>Sale</h1><hr><p>20% off</p><blockquote>A quote from a happy"
        " customer</blockquote><hr><p>Unsubscribe</p></td></tr></table>",
        # A pure forward: nothing above the quote, so it all stays.
        '<div dir="ltr"><br><div class="gmail_quote"><div class="gmail_attr">---------- '
        "Forwarded message ---------<br>From: Iris</div><div>Mijn pakket</div></div></div>",
        "",
    ],
)
def test_split_quoted_html_leaves_unrecognised_html_whole(html):
    assert split_quoted_html(html) == (html, "")


def test_inline_html_answers_stay_visible():
    html = (
        '<div>See inline.</div><blockquote type="cite">Which size?</blockquote>'
        '<div>Size 42.</div><blockquote type="cite">Kind regards, Sam</blockquote>'
    )
    visible, quoted = split_quoted_html(html)
    assert "Which size?" in visible and "Size 42." in visible
    assert quoted == '<blockquote type="cite">Kind regards, Sam</blockquote>'


def test_unclosed_quote_container_runs_to_the_end():
    html = '<html><body><div>New text</div><div class="gmail_quote"><div>Old</body></html>'
    visible, quoted = split_quoted_html(html)
    assert visible == "<html><body><div>New text</div></body></html>"
    assert "Old" in quoted


def test_html_only_mail_gets_text_and_its_quote_split():
    raw = _headers_only(
        "From: a@example.com",
        "Message-ID: <h@example.com>",
        "Content-Type: text/html; charset=utf-8",
        body=(
            '<p>Ja, graag &amp; snel.<br>Groet</p><div class="gmail_quote"><div>Op ma 3 mrt '
            '2025 schreef Winkel &lt;w@shop.example&gt;:</div><blockquote class="gmail_quote">'
            "<p>Zullen we leveren?</p></blockquote></div>"
        ),
    )
    parsed = parse_email(raw)
    assert parsed.text.startswith("Ja, graag & snel.\nGroet")
    assert "> Zullen we leveren?" in parsed.text
    assert parsed.visible_text == "Ja, graag & snel.\nGroet"
    assert "Zullen we leveren?" in parsed.quoted_text
    assert "Zullen we leveren" in parsed.quoted_html


# --- charsets ---------------------------------------------------------------------------


def _text_mail(body: bytes, content_type: str, cte: str = "8bit") -> bytes:
    head = (
        "From: a@example.com\r\nMessage-ID: <c@example.com>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode("ascii") + body


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("utf-8", "Gr\u00fc\u00dfe, \u20ac 5 \u2013 \U0001f600"),
        ("iso-8859-1", "Caf\u00e9 cr\u00e8me, \u00e0 bient\u00f4t"),
        ("iso-8859-15", "Prix : 5 \u20ac, \u0153uvre"),
        ("windows-1252", "\u201cQuoted\u201d \u2013 \u20ac 5\u2026"),
        ("koi8-r", "\u041f\u0440\u0438\u0432\u0435\u0442"),
        ("iso-2022-jp", "\u3053\u3093\u306b\u3061\u306f"),
        ("shift_jis", "\u6ce8\u6587\u756a\u53f7"),
        ("euc-kr", "\uc548\ub155\ud558\uc138\uc694"),
        ("big5", "\u60a8\u597d"),
        ("gb2312", "\u60a8\u597d"),
        ("utf-16", "UTF-16 \u00e9\u00e8"),
    ],
)
def test_declared_charsets(charset, text):
    parsed = parse_email(_text_mail(text.encode(charset), f"text/plain; charset={charset}"))
    assert parsed.text == text
    assert parsed.defects == ()


@pytest.mark.parametrize(
    ("body", "content_type", "expected", "defect"),
    [
        # Declared Latin-1, sent as UTF-8: read as UTF-8.
        ("Gr\u00fc\u00dfe".encode(), "text/plain; charset=iso-8859-1", "Gr\u00fc\u00dfe", "UTF-8"),
        # Declared UTF-8, sent as Windows-1252: falls back.
        (
            "caf\u00e9 \u20ac".encode("cp1252"),
            "text/plain; charset=utf-8",
            "caf\u00e9 \u20ac",
            "cp1252",
        ),
        # Declared us-ascii with 8-bit UTF-8.
        ("na\u00efve".encode(), "text/plain; charset=us-ascii", "na\u00efve", "UTF-8"),
        # Unknown charsets.
        (
            "\u00e9t\u00e9".encode(),
            "text/plain; charset=x-klingon",
            "\u00e9t\u00e9",
            "unknown charset",
        ),
        (
            "\u00e9t\u00e9".encode("cp1252"),
            "text/plain; charset=unknown-8bit",
            "\u00e9t\u00e9",
            "cp1252",
        ),
        # Not charsets at all, though Python has codecs of that name.
        (b"plain", "text/plain; charset=base64", "plain", "unknown charset"),
        (b"plain", "text/plain; charset=rot13", "plain", "unknown charset"),
        # No charset, 8-bit body.
        ("\u00e9t\u00e9".encode("cp1252"), "text/plain", "\u00e9t\u00e9", "without a charset"),
        # Bytes no codec reads end up as Latin-1 rather than lost (0x81 is undefined in cp1252).
        (b"\x81\xe9", "text/plain; charset=utf-8", "\x81\u00e9", "latin-1"),
    ],
)
def test_charset_fallbacks(body, content_type, expected, defect):
    parsed = parse_email(_text_mail(body, content_type))
    assert parsed.text == expected
    assert any(defect in d for d in parsed.defects), parsed.defects


def test_html_charset_from_meta_tag():
    body = '<html><head><meta charset="windows-1252"></head><body>\u20ac 5</body></html>'
    parsed = parse_email(_text_mail(body.encode("cp1252"), "text/html"))
    assert "\u20ac 5" in parsed.html
    assert parsed.text == "\u20ac 5"


def test_quoted_printable_and_base64_text():
    qp = _text_mail(
        b"Gr=C3=BC=C3=9Fe aus K=\r\n=C3=B6ln", "text/plain; charset=utf-8", "quoted-printable"
    )
    assert parse_email(qp).text == "Gr\u00fc\u00dfe aus K\u00f6ln"  # soft line break joined
    b64 = _text_mail(b"R3LDvMOfZQ", "text/plain; charset=utf-8", "base64")  # no padding
    parsed = parse_email(b64)
    assert parsed.text == "Grüße"
    assert any("padding" in d for d in parsed.defects)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?utf-8?Q?Caf=C3=A9?=", "Café"),
        ("=?utf-8?B?Q2Fmw6k=?=", "Café"),
        ("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"),  # whitespace between words is dropped
        ("=?utf-8?q?a?=\r\n =?utf-8?q?_b?=", "a b"),
        ("Re: =?iso-8859-1?q?r=E9servation?= confirm", "Re: réservation confirm"),
        ("=?utf-8*nl?Q?Hallo?=", "Hallo"),  # RFC 2231 language tag
        ("=?utf-8?Q?missing end", "missing end"),
        ("=?utf-8?B?SGFsbG8", "Hallo"),  # unterminated and unpadded
        ("Gr\u00fc\u00dfe unencoded", "Grüße unencoded"),
        ("=?bogus?Q?caf=E9?=", "café"),
        ("  lots   of\r\n\tspace  ", "lots of space"),
    ],
)
def test_subject_decoding(header, expected):
    parsed = parse_email(_headers_only("From: a@example.com", f"Subject: {header}"))
    assert parsed.subject == expected


def test_latin1_bytes_in_a_header():
    raw = b"From: J\xfcrgen <j@example.de>\r\nSubject: M\xfcnchen\r\n\r\nHallo\r\n"
    parsed = parse_email(raw)
    assert parsed.subject == "M\u00fcnchen"
    assert parsed.sender is not None and parsed.sender.name == "J\u00fcrgen"
    assert any("Windows-1252" in d for d in parsed.defects)


# --- attachments and limits -------------------------------------------------------------


def _mail_with_attachment(size: int) -> bytes:
    import base64

    data = base64.encodebytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return (
        b"From: a@example.com\r\nMessage-ID: <s@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nZie bijlage.\r\n--b\r\n"
        b'Content-Type: application/pdf; name="offerte.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"--b--\r\n"
    )


def test_size_limit():
    raw = _mail_with_attachment(5000)
    kept = parse_email(raw, max_attachment_bytes=5000)
    assert [len(a.content) for a in kept.attachments] == [5000]
    assert kept.skipped_attachments == ()

    skipped = parse_email(raw, max_attachment_bytes=4999)
    assert skipped.attachments == ()
    [s] = skipped.skipped_attachments
    assert (s.filename, s.content_type, s.size) == ("offerte.pdf", "application/pdf", 5000)
    assert s.reason == "larger than the 4.9 KB limit"
    assert skipped.visible_text == "Zie bijlage."  # the rest of the mail is kept

    assert parse_email(raw, max_attachment_bytes=4096).skipped_attachments[0].reason == (
        "larger than the 4 KB limit"
    )


def test_default_limit_is_25_mb():
    assert parse_email(_mail_with_attachment(10)).attachments[0].content_type == "application/pdf"
    parsed = parse_email(_mail_with_attachment(10), max_attachment_bytes=25 * 1024 * 1024 - 1)
    assert parsed.attachments
    parsed = parse_email(_mail_with_attachment(25 * 1024 * 1024 + 1))
    assert parsed.skipped_attachments[0].reason == "larger than the 25 MB limit"


def test_forwarded_message_attachment_reparses():
    parsed = parse_file("25-forwarded-rfc822.eml")
    [forwarded] = parsed.attachments
    inner = parse_email(forwarded.content)
    assert inner.subject == "Uw zending 3SABC1234567 kon niet worden bezorgd"
    assert inner.message_id == "3SABC1234567.attempt1@carrier.example"
    assert "niet thuis" in inner.text


def test_inline_image_has_content_id():
    parsed = parse_file("17-nested-related-cid.eml")
    image = parsed.attachments[0]
    assert image.content_id == "lamp-photo@example.nl"
    assert image.inline
    assert image.content.startswith(b"\xff\xd8")  # decoded JPEG, not base64


def test_truncated_attachment_keeps_what_arrived():
    parsed = parse_file("46-truncated-base64.eml")
    assert parsed.attachments[0].content.startswith(b"%PDF-1.4")


# --- loops, bounces, authentication -----------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (["Auto-Submitted: auto-generated"], "Auto-Submitted: auto-generated"),
        (
            ["Auto-Submitted: auto-replied; owner-email=x@example.com"],
            "Auto-Submitted: auto-replied",
        ),
        (["Auto-Submitted: no"], ""),
        (["Precedence: list"], "Precedence: list"),
        (["Precedence: junk"], "Precedence: junk"),
        (["Precedence: first-class"], ""),
        (["X-Auto-Response-Suppress: OOF, AutoReply"], "X-Auto-Response-Suppress: OOF, AutoReply"),
        (["X-Auto-Response-Suppress: DR, RN, NRN"], "X-Auto-Response-Suppress: DR, RN, NRN"),
        (["X-Autoreply: yes"], "X-Autoreply: yes"),
        (["X-Autorespond: vacation"], "X-Autorespond: vacation"),
        (["X-Auto-Reply-From: shop@example.com"], "X-Auto-Reply-From: shop@example.com"),
        (["List-Id: <news.example.com>"], "List-Id"),
        (["List-Unsubscribe: <mailto:u@example.com>"], "List-Unsubscribe"),
        (["Return-Path: <>"], "Return-Path: <>"),
        (["Subject: Automatic reply: your order"], "Subject: Automatic reply"),
        (["Subject: Afwezigheidsmelding: retour"], "Subject: Afwezigheidsmelding"),
        (["Subject: Abwesenheitsnotiz: Bestellung"], "Subject: Abwesenheitsnotiz"),
        (["Subject: R\u00e9ponse automatique : commande"], "Subject: R\u00e9ponse automatique"),
        (["Subject: Out of Office AutoReply: order"], "Subject: Out of Office AutoReply"),
        (["Subject: Question about an automatic reply"], ""),
    ],
)
def test_auto_submitted_signals(headers, reason):
    parsed = parse_email(_headers_only("From: Jan <jan@example.com>", *headers))
    assert parsed.auto_reason == reason
    assert parsed.auto_submitted == bool(reason)
    assert parsed.bounce is None


@pytest.mark.parametrize(
    ("sender", "auto"),
    [
        ("noreply@shop.example", True),
        ("no-reply@shop.example", True),
        ("orders-noreply@shop.example", True),
        ("do-not-reply@shop.example", True),
        ("DoNotReply@shop.example", True),
        ("postmaster@shop.example", True),
        ("mailer-daemon@shop.example", True),
        ("jan.noreen@example.com", False),
        ("reply@example.com", False),
    ],
)
def test_machine_senders(sender, auto):
    parsed = parse_email(_headers_only(f"From: {sender}", "Subject: Hello"))
    assert parsed.auto_submitted == auto


def test_mailer_daemon_bounce_without_report():
    raw = _headers_only(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>",
        "Subject: Mail delivery failed: returning message to sender",
        "X-Failed-Recipients: klant@example.nl",
        body=(
            "This message was created automatically by mail delivery software.\r\n\r\n"
            "A message that you sent could not be delivered to one or more of its\r\n"
            "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
            "  klant@example.nl\r\n    host mx.example.nl [192.0.2.1]\r\n"
            "    SMTP error from remote mail server after RCPT TO:<klant@example.nl>:\r\n"
            "    550 5.1.1 User unknown\r\n\r\n"
            "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
            "Message-Id: <reply.1@shop.example>\r\nSubject: Re: order\r\n\r\nHello\r\n"
        ),
    )
    parsed = parse_email(raw)
    assert parsed.auto_reason == "bounce"
    assert parsed.bounce is not None
    assert parsed.bounce.original_message_id == "reply.1@shop.example"
    assert parsed.bounce.recipient == "klant@example.nl"
    assert parsed.bounce.status == "5.1.1"
    assert parsed.bounce.permanent
    assert "User unknown" in parsed.bounce.reason


def test_a_success_report_is_not_a_bounce():
    raw = _headers_only(
        "From: MAILER-DAEMON@mx.example.com",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        body=(
            "--r\r\nContent-Type: text/plain\r\n\r\nYour message was delivered.\r\n"
            "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            "Final-Recipient: rfc822; a@example.nl\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
            "\r\n--r--\r\n"
        ),
    )
    parsed = parse_email(raw)
    assert parsed.bounce is None
    assert parsed.auto_submitted and parsed.auto_reason == "delivery report"


def test_out_of_office_is_auto_but_not_a_bounce():
    parsed = parse_file("34-out-of-office.eml")
    assert parsed.auto_submitted and parsed.bounce is None


def _with_auth(*headers: str, trusted=("mx.loket.example",)):
    raw = _headers_only(*headers, "From: a@pay.example", "Subject: x")
    return parse_email(raw, trusted_authserv_ids=trusted).authentication


def test_authentication_results_topmost_trusted_wins():
    auth = _with_auth(
        "Authentication-Results: MX.Loket.Example; spf=pass smtp.mailfrom=pay.example;"
        " dkim=fail header.d=pay.example; dkim=pass header.d=esp.example; dmarc=pass",
        "Authentication-Results: mx.loket.example; spf=fail; dkim=fail; dmarc=fail",
    )
    assert auth is not None
    assert (auth.authserv_id, auth.spf, auth.dkim, auth.dmarc) == (
        "mx.loket.example",
        "pass",
        "pass",  # any passing signature
        "pass",
    )


def test_authentication_results_from_untrusted_hosts_are_ignored():
    header = "Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass"
    assert _with_auth(header) is None
    assert _with_auth(header, trusted=()) is None
    # Without an authserv-id (Exchange Online writes it so) nothing can be trusted.
    assert _with_auth("Authentication-Results: spf=pass smtp.mailfrom=x; dmarc=pass") is None


def test_authentication_results_forms():
    auth = _with_auth(
        "Authentication-Results: mx.loket.example 1; (comment; with = signs)\r\n"
        "\tspf=hardfail (sender IP is 198.51.100.7) smtp.mailfrom=pay.example;\r\n"
        "\tdkim/1=neutral;\r\n\tdmarc=none"
    )
    assert auth is not None
    assert (auth.spf, auth.dkim, auth.dmarc) == ("fail", "neutral", "none")
    auth = _with_auth("Authentication-Results: mx.loket.example; none")
    assert auth is not None and (auth.spf, auth.dkim, auth.dmarc) == ("", "", "")


# --- content hash -----------------------------------------------------------------------


def test_content_hash_ignores_trace_headers_and_line_endings():
    raw = (CORPUS / "16-alternative.eml").read_bytes()
    redelivered = (
        b"Return-Path: <other@example.com>\r\nDelivered-To: archive@shop.example\r\n"
        b"Received: from relay.example (relay.example [192.0.2.99])\r\n\tby mx2; Mon\r\n"
        b"X-Spam-Score: 1.2\r\nAuthentication-Results: mx2.example; spf=pass\r\n"
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none\r\n" + raw
    )
    original = parse_email(raw).content_hash
    assert parse_email(redelivered).content_hash == original
    assert parse_email(raw.replace(b"\r\n", b"\n")).content_hash == original
    assert parse_email(raw.replace(b"company name", b"company's name")).content_hash != original
    assert parse_email(raw.replace(b"Subject: Invoice", b"Subject: Re: Invoice")).content_hash != (
        original
    )


# --- broken input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n",
        b"\n",
        b"just some text\nwithout any headers\n\nat all\n",
        b"\x00\x01\x02",
    ],
)
def test_hopeless_input_is_unparseable(raw):
    with pytest.raises(UnparseableEmail):
        parse_email(raw)


def test_headers_only_and_odd_starts_parse():
    assert parse_email(b"Subject: just a header").subject == "just a header"
    parsed = parse_email(b"\xef\xbb\xbf\r\n\r\nFrom: a@example.com\r\nSubject: BOM\r\n\r\nbody")
    assert parsed.subject == "BOM" and parsed.text == "body"
    parsed = parse_email(b"From jan@example.com Mon Mar  3 10:00:00 2025\nSubject: mbox\n\nbody")
    assert parsed.subject == "mbox"
    parsed = parse_email(b"garbage line\nSubject: after garbage\n\nbody")
    assert parsed.subject == "after garbage" and parsed.defects


def test_deeply_nested_multiparts():
    depth = 60
    raw = b"From: a@example.com\r\nMessage-ID: <n@example.com>\r\n"
    for i in range(depth):
        raw += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
    raw += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for i in reversed(range(depth)):
        raw += f"--b{i}--\r\n".encode()
    parsed = parse_email(raw)
    assert_storable(parsed)
    assert any("nested too deep" in d for d in parsed.defects)


def _mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    cuts = [max(1, len(raw) * k // 10) for k in range(1, 10)] + [len(raw) - 1]
    out = [raw[:cut] for cut in cuts]
    for _ in range(8):
        flipped = bytearray(raw)
        for _ in range(rng.randint(1, 30)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
    for insert in (b"\x00" * 3, b"\r\r\n", b"=?utf-8?B?", b"\n--", b"\xff\xfe\xfd"):
        pos = rng.randrange(len(raw))
        out.append(raw[:pos] + insert + raw[pos:])
    out += [raw.replace(b"\r\n", b"\n"), raw.replace(b"\n", b"\r"), raw.upper(), raw.lower()]
    return out


@pytest.mark.parametrize("name", EML_FILES)
def test_mutated_corpus_never_raises(name):
    raw = (CORPUS / name).read_bytes()
    rng = random.Random(f"loket-{name}")  # fixed seed per file: reproducible
    for variant in _mutations(raw, rng):
        parsed = parse_email(variant, max_attachment_bytes=2000, trusted_authserv_ids=["mx"])
        assert_storable(parsed)


def test_parse_is_fast():
    """A 50 KB HTML body and a 200 KB attachment parse in a few ms (the stdlib parser is most
    of it). The bound is loose: CI machines are slow and busy."""
    import base64

    para = "<p>Order <b>12345</b> &amp; invoice. " + "Lorem ipsum dolor sit amet. " * 6 + "</p>\n"
    html = "<html><body>" + para * (50_000 // len(para)) + "</body></html>"
    attachment = base64.encodebytes(bytes(range(256)) * 800)
    raw = (
        (
            "From: a@example.com\r\nMessage-ID: <p@example.com>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
            "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--m\r\n"
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + attachment
        + b"--m--\r\n"
    )
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        parsed = parse_email(raw)
        timings.append(time.perf_counter() - start)
    assert len(parsed.attachments[0].content) == 204_800
    assert min(timings) < 0.1


def test_dates_are_aware_everywhere_in_the_corpus():
    for name in EML_FILES:
        parsed = parse_file(name)
        assert parsed.date is None or parsed.date.utcoffset() is not None
        if parsed.date is not None:
            assert parsed.date < datetime(2030, 1, 1, tzinfo=UTC)

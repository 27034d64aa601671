"""smtp.send and smtp.check against real aiosmtpd servers on loopback."""

from __future__ import annotations

import copy
import time

import pytest

from loket.connectors.email.composing import (
    Address,
    OutgoingEmail,
    compose,
    envelope_recipients,
)
from loket.connectors.email.smtp import SmtpError, SmtpReply, check, send
from tests.connectors.email.smtp_servers import (
    RecordingServer,
    Script,
    closed_port,
    silent_listener,
)

USER, PASSWORD = "agent@acme.test", "s3cret-pässwörd"


def make_mail(**overrides) -> OutgoingEmail:
    values = {
        "sender": Address("Acme Support", "support@acme.test"),
        "to": (Address("Bob", "bob@customer.test"),),
        "cc": (Address("Carol", "carol@customer.test"),),
        "bcc": (Address("Boss", "boss@acme.test"),),
        "subject": "Über your order",
        "text": "Hello Bob,\n.\nA line with only a dot, above.\n",
        "html": "<p>Hello Bob</p>",
        "in_reply_to": "question-1@customer.test",
        "references": ("question-1@customer.test",),
    }
    values.update(overrides)
    return OutgoingEmail(**values)


def deliver(server: RecordingServer, mail: OutgoingEmail | None = None, **settings) -> SmtpReply:
    mail = mail or make_mail()
    return send(
        server.settings(**settings),
        compose(mail, domain="acme.test"),
        envelope_from=mail.sender.address,
        recipients=envelope_recipients(mail),
    )


# --- delivery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["none", "starttls", "implicit"])
def test_send_with_auth_over_each_security(tls):
    mail = make_mail()
    message = compose(mail, domain="acme.test")
    with RecordingServer(tls=tls, credentials={USER: PASSWORD}) as server:
        reply = send(
            server.settings(username=USER, password=PASSWORD),
            message,
            envelope_from="support@acme.test",
            recipients=envelope_recipients(mail),
        )
    assert reply == "250 2.0.0 Ok: queued as TEST42"
    assert isinstance(reply, str)
    assert reply.refused == ()
    assert reply.accepted == ("bob@customer.test", "carol@customer.test", "boss@acme.test")
    (received,) = server.received
    assert received.login == USER
    assert received.tls is (tls != "none")
    assert received.mail_from == "support@acme.test"
    assert received.rcpt_tos == ("bob@customer.test", "carol@customer.test", "boss@acme.test")
    got = received.message
    for header in ("Message-ID", "From", "To", "Cc", "Subject", "In-Reply-To", "References"):
        assert got[header] == message[header], header
    assert got["Subject"] == "Über your order"
    assert "Bcc" not in got
    assert b"boss@acme.test" not in received.data
    # Dot-stuffing undone by the server: the lone "." line arrives intact.
    assert got.get_body(("plain",)).get_content().replace("\r\n", "\n") == mail.text
    # The exact bytes compose() made (the server strips only the final CRLF.CRLF).
    assert received.data.rstrip(b"\r\n") == message.as_bytes().rstrip(b"\r\n")


def test_send_without_auth_and_with_auth_login_only():
    with RecordingServer() as server:
        deliver(server)
    assert server.received[0].login is None
    with RecordingServer(
        tls="starttls", credentials={USER: PASSWORD}, auth_mechanisms=("LOGIN",)
    ) as server:
        deliver(server, username=USER, password=PASSWORD)
    assert server.received[0].login == USER


def test_send_with_xoauth2():
    with RecordingServer(tls="implicit", oauth_tokens={USER: "ya29.token"}) as server:
        deliver(server, username=USER, oauth2_token="ya29.token")
        with pytest.raises(SmtpError) as failure:
            deliver(server, username=USER, oauth2_token="expired")
    assert server.received[0].login == USER
    assert failure.value.transient is False
    assert failure.value.reason.startswith("login failed: 535")


def test_a_wrong_password_is_a_permanent_login_failure():
    with (
        RecordingServer(tls="starttls", credentials={USER: PASSWORD}) as server,
        pytest.raises(SmtpError) as failure,
    ):
        deliver(server, username=USER, password="wrong")
    assert failure.value.transient is False
    assert failure.value.code == 535
    assert failure.value.reason == "login failed: 535 5.7.8 Authentication credentials invalid"
    assert "wrong" not in str(failure.value)
    assert server.received == []


def test_no_login_when_the_server_requires_one():
    with (
        RecordingServer(tls="starttls", credentials={USER: PASSWORD}) as server,
        pytest.raises(SmtpError) as failure,
    ):
        deliver(server)
    assert failure.value.transient is False
    assert "530" in failure.value.reason and "sender" in failure.value.reason


def test_the_envelope_uses_idna_and_smtputf8_only_when_needed():
    with RecordingServer() as server:
        deliver(server, make_mail(to=(Address("Jörg", "jorg@müller.test"),), cc=(), bcc=()))
        deliver(server, make_mail(to=(Address("Jörg", "jörg@müller.test"),), cc=(), bcc=()))
    ascii_mail, utf8_mail = server.received
    assert ascii_mail.rcpt_tos == ("jorg@xn--mller-kva.test",)
    assert "SMTPUTF8" not in ascii_mail.mail_options
    assert utf8_mail.rcpt_tos == ("jörg@müller.test",)
    assert "SMTPUTF8" in utf8_mail.mail_options
    assert "BODY=8BITMIME" in utf8_mail.mail_options
    assert "jörg@müller.test".encode() in utf8_mail.data


def test_a_bcc_header_on_a_message_built_elsewhere_is_not_sent():
    message = compose(make_mail(), domain="acme.test")
    message["Bcc"] = "boss@acme.test"
    with RecordingServer() as server:
        send(
            server.settings(),
            message,
            envelope_from="support@acme.test",
            recipients=["boss@acme.test"],
        )
    assert "Bcc" not in server.received[0].message
    assert message["Bcc"] == "boss@acme.test"  # the caller's message is left alone


def test_invalid_envelope_addresses_are_refused_before_connecting():
    message = compose(make_mail(), domain="acme.test")
    with RecordingServer() as server:
        for recipients, sender in [
            (["bob@customer.test\r\nRCPT TO:<evil@x.test>"], "support@acme.test"),
            (["bob@customer.test"], "support@acme.test>\r\nRSET"),
            ([], "support@acme.test"),
        ]:
            with pytest.raises(SmtpError) as failure:
                send(server.settings(), message, envelope_from=sender, recipients=recipients)
            assert failure.value.transient is False
        assert server.handler.commands == []


def test_a_message_over_the_servers_size_limit_is_refused_up_front():
    with RecordingServer(data_size_limit=2000) as server, pytest.raises(SmtpError) as failure:
        deliver(server, make_mail(text="x" * 5000))
    assert failure.value.transient is False
    assert "accepts at most 2000" in failure.value.reason
    assert server.handler.commands == []


# --- refusals -----------------------------------------------------------------------------------


def test_one_recipient_refused_the_other_still_gets_it():
    script = Script(refuse_rcpt={"bob@customer.test": "550 5.1.1 user unknown"})
    with RecordingServer(script=script) as server:
        reply = deliver(server, make_mail(bcc=()))
    assert reply == "250 2.0.0 Ok: queued as TEST42"
    assert reply.accepted == ("carol@customer.test",)
    (refused,) = reply.refused
    assert (refused.address, refused.code, refused.transient) == ("bob@customer.test", 550, False)
    assert (
        refused.reason == "the server refused recipient bob@customer.test: 550 5.1.1 user unknown"
    )
    assert server.received[0].rcpt_tos == ("carol@customer.test",)


def test_results_and_errors_can_be_copied_and_pickled():
    # deepcopy goes through the same __reduce_ex__ protocol as pickle.
    script = Script(refuse_rcpt={"bob@customer.test": "550 5.1.1 user unknown"})
    with RecordingServer(script=script) as server:
        reply = deliver(server, make_mail(bcc=()))
        with pytest.raises(SmtpError) as failure:
            deliver(server, make_mail(cc=(), bcc=()))
    duplicate = copy.deepcopy(reply)
    assert (duplicate, duplicate.accepted, duplicate.refused) == (
        reply,
        reply.accepted,
        reply.refused,
    )
    error = copy.deepcopy(failure.value)
    assert (error.reason, error.transient, error.code, error.refused) == (
        failure.value.reason,
        False,
        550,
        failure.value.refused,
    )


def test_a_temporarily_refused_recipient_is_transient():
    script = Script(refuse_rcpt={"bob@customer.test": "450 4.2.0 mailbox busy"})
    with RecordingServer(script=script) as server:
        with pytest.raises(SmtpError) as failure:
            deliver(server, make_mail(cc=(), bcc=()))
        partial = deliver(server, make_mail(bcc=()))
    assert failure.value.transient is True
    assert failure.value.code == 450
    assert failure.value.reason == (
        "the server refused all recipients: "
        "the server refused recipient bob@customer.test: 450 4.2.0 mailbox busy"
    )
    assert [r.address for r in failure.value.refused] == ["bob@customer.test"]
    assert partial.refused[0].transient is True


def test_all_recipients_refused_is_permanent_only_if_all_are_5xx():
    both_5xx = Script(
        refuse_rcpt={"bob@customer.test": "550 5.1.1 no", "carol@customer.test": "553 5.1.3 bad"}
    )
    with RecordingServer(script=both_5xx) as server, pytest.raises(SmtpError) as failure:
        deliver(server, make_mail(bcc=()))
    assert failure.value.transient is False
    assert "bob@customer.test: 550" in failure.value.reason
    assert "carol@customer.test: 553" in failure.value.reason
    assert server.handler.commands.count("DATA") == 0

    mixed = Script(
        refuse_rcpt={"bob@customer.test": "550 5.1.1 no", "carol@customer.test": "452 4.5.3 busy"}
    )
    with RecordingServer(script=mixed) as server, pytest.raises(SmtpError) as failure:
        deliver(server, make_mail(bcc=()))
    assert failure.value.transient is True


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("451 4.3.0 try again later", True), ("554 5.7.1 message refused as spam", False)],
)
def test_the_message_refused_after_data(reply, transient):
    with (
        RecordingServer(script=Script(data_reply=reply)) as server,
        pytest.raises(SmtpError) as failure,
    ):
        deliver(server)
    assert failure.value.transient is transient
    assert failure.value.reason == f"the server refused the message: {reply}"


def test_the_sender_refused():
    script = Script(refuse_mail="553 5.7.1 sender not allowed for this login")
    with RecordingServer(script=script) as server, pytest.raises(SmtpError) as failure:
        deliver(server)
    assert failure.value.transient is False
    assert failure.value.reason == (
        "the server refused the sender <support@acme.test>: "
        "553 5.7.1 sender not allowed for this login"
    )


# --- connection problems ------------------------------------------------------------------------


def test_connection_refused_is_transient():
    port = closed_port()
    with RecordingServer() as server:
        settings = server.settings(port=port)
    with pytest.raises(SmtpError) as failure:
        send(
            settings,
            compose(make_mail(), domain="acme.test"),
            envelope_from="support@acme.test",
            recipients=["bob@customer.test"],
        )
    assert failure.value.transient is True
    assert failure.value.reason.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert "refused" in failure.value.reason.lower()


def test_a_server_that_never_greets_times_out():
    with silent_listener() as port, RecordingServer() as server:
        started = time.monotonic()
        with pytest.raises(SmtpError) as failure:
            check(server.settings(port=port, timeout=0.5))
        assert time.monotonic() - started < 3
    assert failure.value.transient is True
    assert failure.value.reason == (
        f"cannot connect to 127.0.0.1:{port}: timed out waiting for the greeting"
    )


def test_a_slow_reply_to_the_data_times_out_transiently():
    with (
        RecordingServer(script=Script(delay={"DATA": 3})) as server,
        pytest.raises(SmtpError) as failure,
    ):
        deliver(server, timeout=1.0)
    assert failure.value.transient is True
    assert "timed out waiting for the server's reply to DATA" in failure.value.reason
    assert "may or may not have been delivered" in failure.value.reason


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_dropped_connection_is_transient(stage):
    with (
        RecordingServer(script=Script(drop_at=stage)) as server,
        pytest.raises(SmtpError) as failure,
    ):
        deliver(server)
    assert failure.value.transient is True
    assert "closed the connection" in failure.value.reason
    assert server.received == []


def test_an_untrusted_certificate_is_reported():
    with (
        RecordingServer(tls="starttls", credentials={USER: PASSWORD}) as server,
        pytest.raises(SmtpError) as failure,
    ):
        # The default context: the system CAs, which do not know the test certificate.
        deliver(server, username=USER, password=PASSWORD, ssl_context=None)
    assert "TLS certificate of 127.0.0.1 could not be verified" in failure.value.reason
    assert server.received == []


# --- check --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["none", "starttls", "implicit"])
def test_check_succeeds(tls):
    with RecordingServer(tls=tls, credentials={USER: PASSWORD}) as server:
        check(server.settings(username=USER, password=PASSWORD))
        check(server.settings(username=USER, password=PASSWORD, local_hostname=None))
    assert server.received == []


def test_check_failures_have_clear_reasons():
    with (
        RecordingServer(tls="starttls", credentials={USER: PASSWORD}) as server,
        pytest.raises(SmtpError, match=r"^login failed: 535 ") as failure,
    ):
        check(server.settings(username=USER, password="nope"))
        assert failure.value.transient is False
    with RecordingServer() as plain:
        with pytest.raises(SmtpError) as failure:
            check(plain.settings(security="starttls"))
        assert failure.value.transient is False
        assert "does not offer STARTTLS" in failure.value.reason
        with pytest.raises(SmtpError) as failure:
            check(plain.settings(security="tls"))
        assert failure.value.reason.startswith(f"TLS with 127.0.0.1:{plain.port} failed")
        assert "try 'starttls'" in failure.value.reason
    with pytest.raises(SmtpError) as failure:
        check(plain.settings(port=closed_port()))
    assert failure.value.transient is True
    assert failure.value.reason.startswith("cannot connect to 127.0.0.1:")
    with pytest.raises(SmtpError, match="unknown security setting"):
        check(plain.settings(security="ssl"))

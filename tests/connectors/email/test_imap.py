"""The IMAP side of the email channel against a real Dovecot: connecting, errors an admin can
act on, and fetch_new's promise that no mail is lost or marked before it is stored."""

from __future__ import annotations

import pickle
import socket
import ssl
import threading
import time

import pytest

from loket.connectors.email import imap as imap_module
from loket.connectors.email.imap import (
    ImapError,
    ImapMailbox,
    MailboxPoller,
    MailboxState,
    xoauth2_string,
)
from tests.conftest import require
from tests.connectors.email.conftest import Store, make_mail, message_id
from tests.connectors.email.dovecot import DOVEADM, free_port

SEEN = "\\Seen"
# How long a mail may take to reach the store: a bound for a loaded CI machine (two test
# processes, Dovecot and doveadm on two cores), not a speed claim.
ARRIVAL = 20.0


def seen_uids(dovecot, folder="INBOX") -> set[int]:
    return {uid for uid, flags in dovecot.flags(folder).items() if SEEN in flags}


# -- connecting ------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
def test_connects_with_each_security(dovecot, imap_settings, security):
    port = dovecot.tls_port if security == "tls" else dovecot.port
    with ImapMailbox(imap_settings(security=security, port=port)) as mailbox:
        mailbox.check()
        assert mailbox.supports_idle
        secured = isinstance(mailbox._client.socket(), ssl.SSLSocket)
        assert secured == (security != "none")


def test_check_opens_the_processed_and_sent_folders(dovecot, imap_settings):
    dovecot.create_folder("Done")
    dovecot.create_folder("Sent")
    settings = imap_settings(processed_action="move", processed_folder="Done", sent_folder="Sent")
    ImapMailbox(settings).check()  # connects, checks and logs out by itself

    with pytest.raises(ImapError) as missing:
        ImapMailbox(imap_settings(sent_folder="Sent Items")).check()
    assert missing.value.message == 'folder "Sent Items" does not exist'
    assert not missing.value.transient


def test_bad_password_is_a_clear_permanent_error(imap_settings):
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(password="wrong")).check()
    assert caught.value.message == "login failed: authentication failed"
    assert caught.value.transient is False


def test_unknown_folder_is_a_clear_permanent_error(imap_settings):
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(folder="Support")).check()
    assert caught.value.message == 'folder "Support" does not exist'
    assert caught.value.transient is False


def test_connection_refused_is_transient(imap_settings):
    port = free_port()  # nothing listens there
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(port=port)).check()
    assert caught.value.message == f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert caught.value.transient is True


def test_a_server_that_never_answers_times_out_transiently(imap_settings):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts; nobody ever says "* OK"
        started = time.monotonic()
        with pytest.raises(ImapError) as caught:
            ImapMailbox(
                imap_settings(port=listener.getsockname()[1], security="none", timeout=0.5)
            ).check()
    assert time.monotonic() - started < 3
    assert "timed out" in caught.value.message
    assert caught.value.transient is True


def test_an_untrusted_certificate_is_refused(imap_settings):
    # No ssl_context: the system's CAs, which do not know the test server's certificate.
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(ssl_context=None)).check()
    assert caught.value.message.startswith("TLS certificate not valid for host 127.0.0.1: ")
    assert "self-signed" in caught.value.message
    assert caught.value.transient is False


def test_a_certificate_for_another_host_is_refused(dovecot, imap_settings):
    # The certificate names 127.0.0.1 only; "localhost" reaches the same server.
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(host="localhost")).check()
    assert caught.value.message.startswith("TLS certificate not valid for host localhost: ")
    assert "mismatch" in caught.value.message.lower()
    assert caught.value.transient is False


def test_starttls_certificate_is_verified_too(dovecot, imap_settings):
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(security="starttls", port=dovecot.port, ssl_context=None)).check()
    assert caught.value.message.startswith("TLS certificate not valid")


def test_tls_to_the_plain_port_says_to_check_the_port(dovecot, imap_settings):
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(port=dovecot.port)).check()
    assert caught.value.message.startswith(f"TLS handshake with 127.0.0.1:{dovecot.port} failed")
    assert "check the port and security setting" in caught.value.message
    assert caught.value.transient is False


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"security": "ssl"}, 'unknown security "ssl"'),
        ({"processed_action": "move"}, "moving processed mail needs a folder"),
        ({"processed_action": "move", "processed_folder": "INBOX"}, "processed folder must"),
        ({"sent_folder": "INBOX"}, "sent folder must differ"),
    ],
)
def test_inconsistent_settings_are_refused_before_connecting(imap_settings, overrides, reason):
    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(**overrides)).check()
    assert reason in caught.value.message
    assert caught.value.transient is False


def test_xoauth2_login(dovecot, imap_settings, store):
    # Dovecot 2.3 checks an XOAUTH2 bearer token against the passdb like a password.
    dovecot.append(make_mail(1))
    with ImapMailbox(imap_settings(password="", oauth2_token=dovecot.password)) as mailbox:
        mailbox.fetch_new(MailboxState(), store)
    assert store.stored == ["<mail-1@customer.example>"]

    with pytest.raises(ImapError) as caught:
        ImapMailbox(imap_settings(oauth2_token="expired-token")).check()
    assert caught.value.message == "login failed (XOAUTH2 status 401): authentication failed"
    assert caught.value.transient is False


def test_imap_error_survives_pickling():
    # Errors cross process boundaries (task results, multiprocessing).
    error = pickle.loads(pickle.dumps(ImapError("login failed: nope", transient=False)))  # noqa: S301
    assert (str(error), error.message, error.transient) == ("login failed: nope",) * 2 + (False,)


def test_xoauth2_string():
    assert xoauth2_string("a@b.example", "tok") == "user=a@b.example\x01auth=Bearer tok\x01\x01"


def test_non_ascii_password_logs_in_with_sasl_plain(dovecot, imap_settings):
    # Dovecot allows only ASCII in user names; passwords are bytes to it.
    server = type(dovecot).start({"joerg": "wächter-ß"})
    try:
        settings = imap_settings(
            port=server.tls_port,
            username="joerg",
            password="wächter-ß",
            ssl_context=server.ssl_context(),
        )
        ImapMailbox(settings).check()
    finally:
        server.stop()


# -- fetch_new -------------------------------------------------------------------------------


def test_fetch_new_stores_in_uid_order_and_marks_only_after_store(dovecot, imap_settings):
    uids = [dovecot.append(make_mail(n)) for n in range(1, 4)]
    uidvalidity = dovecot.uidvalidity()
    delivered = []

    def store(uid, raw, new_state):
        # Seen from a second connection: not marked while the caller is still storing.
        assert SEEN not in dovecot.flags()[uid]
        assert new_state == MailboxState(uidvalidity, uid)
        delivered.append((uid, message_id(raw)))

    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(MailboxState(), store)
        assert not mailbox.has_more

    assert delivered == [(uid, f"<mail-{n}@customer.example>") for n, uid in enumerate(uids, 1)]
    assert state == MailboxState(uidvalidity, uids[-1])
    assert seen_uids(dovecot) == set(uids)
    # Nothing new: nothing delivered, the state stays.
    with ImapMailbox(imap_settings()) as mailbox:
        assert mailbox.fetch_new(state, store) == state
    assert len(delivered) == 3


def test_a_failing_store_leaves_that_mail_and_later_ones_for_next_time(
    dovecot, imap_settings, store
):
    uids = [dovecot.append(make_mail(n)) for n in range(1, 5)]

    def flaky(uid, raw, new_state):
        if uid == uids[1]:
            raise RuntimeError("database is down")
        store(uid, raw, new_state)

    with ImapMailbox(imap_settings()) as mailbox:
        with pytest.raises(RuntimeError, match="database is down"):
            mailbox.fetch_new(MailboxState(), flaky)
        assert seen_uids(dovecot) == {uids[0]}
        assert store.state.last_uid == uids[0]

        mailbox.fetch_new(store.state, store)
    assert [uid for uid, _mid in store.calls] == uids
    assert seen_uids(dovecot) == set(uids)


def test_mail_read_in_another_client_is_still_delivered(dovecot, imap_settings, store):
    dovecot.append(make_mail(1), flags=[SEEN])
    uid = dovecot.append(make_mail(2))
    dovecot.set_flags(uid, [SEEN])
    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.fetch_new(MailboxState(), store)
    assert store.stored == ["<mail-1@customer.example>", "<mail-2@customer.example>"]


def test_move_mode_moves_stored_mail_to_the_processed_folder(dovecot, imap_settings, store):
    dovecot.create_folder("Loket/Done")
    for n in range(1, 4):
        dovecot.append(make_mail(n))
    settings = imap_settings(processed_action="move", processed_folder="Loket/Done")
    with ImapMailbox(settings) as mailbox:
        assert mailbox.supports_move
        state = mailbox.fetch_new(MailboxState(), store)
    assert len(store.stored) == 3
    assert dovecot.flags() == {}
    assert [message_id(raw) for raw in dovecot.messages("Loket/Done")] == store.stored
    # The moved mails are not taken for new ones, and a new mail still is.
    dovecot.append(make_mail(4))
    with ImapMailbox(settings) as mailbox:
        mailbox.fetch_new(state, store)
    assert len(store.calls) == 4


def test_move_mode_without_the_move_extension_copies_and_expunges(
    dovecot, imap_settings, store, monkeypatch
):
    dovecot.create_folder("Done")
    for n in range(1, 4):
        dovecot.append(make_mail(n))
    settings = imap_settings(processed_action="move", processed_folder="Done")
    with ImapMailbox(settings) as mailbox:
        mailbox.supports_move = False
        monkeypatch.setattr(mailbox._client, "move", None)  # fails if called
        mailbox.fetch_new(MailboxState(), store)
    assert len(store.stored) == 3
    assert dovecot.flags() == {}
    assert [message_id(raw) for raw in dovecot.messages("Done")] == store.stored
    assert all("\\Deleted" not in flags for flags in dovecot.flags("Done").values())


def test_without_move_an_interrupted_move_is_not_copied_twice(dovecot, imap_settings, store):
    dovecot.create_folder("Done")
    uids = [dovecot.append(make_mail(n)) for n in range(1, 4)]
    settings = imap_settings(processed_action="move", processed_folder="Done")
    # Mail 1 was copied and flagged, the EXPUNGE never came; mail 2 was stored, nothing more.
    conn = dovecot.connect()
    conn.select("INBOX")
    conn.uid("COPY", str(uids[0]), "Done")
    conn.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Deleted)")
    conn.logout()
    for uid in uids[:2]:
        store(uid, dovecot.messages()[uid - 1], MailboxState(dovecot.uidvalidity(), uid))
    with ImapMailbox(settings) as mailbox:
        mailbox.supports_move = False
        mailbox.fetch_new(store.load_state(), store)
    assert dovecot.flags() == {}
    assert [message_id(raw) for raw in dovecot.messages("Done")] == store.stored
    assert len(store.stored) == 3


def test_move_to_a_missing_folder_is_a_clear_error_after_the_store(dovecot, imap_settings, store):
    dovecot.append(make_mail(1))
    settings = imap_settings(processed_action="move", processed_folder="Gone")
    with ImapMailbox(settings) as mailbox, pytest.raises(ImapError) as caught:
        mailbox.fetch_new(MailboxState(), store)
    assert caught.value.message == 'folder "Gone" does not exist'
    assert caught.value.transient is False
    assert len(store.stored) == 1  # stored; it stays in the inbox until the folder exists


def test_uidvalidity_change_reads_the_folder_again(dovecot, imap_settings, store):
    for n in range(1, 3):
        dovecot.append(make_mail(n))
    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(MailboxState(), store)
    assert state.last_uid == 2
    new_validity = dovecot.change_uidvalidity()
    dovecot.append(make_mail(3))

    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(state, store)
    # Everything is offered again from UID 1; the Message-ID dedupe keeps one copy each.
    assert [uid for uid, _mid in store.calls] == [1, 2, 1, 2, 3]
    assert len(store.stored) == 3
    assert state == MailboxState(new_validity, 3)


def test_limit_is_honoured_and_has_more_says_so(dovecot, imap_settings, store):
    for n in range(1, 6):
        dovecot.append(make_mail(n))
    state = MailboxState()
    rounds = []
    with ImapMailbox(imap_settings()) as mailbox:
        while True:
            state = mailbox.fetch_new(state, store, limit=2)
            rounds.append((state.last_uid, mailbox.has_more))
            if not mailbox.has_more:
                break
    assert rounds == [(2, True), (4, True), (5, False)]
    assert [uid for uid, _mid in store.calls] == [1, 2, 3, 4, 5]


def test_uid_star_range_does_not_bring_back_the_newest_old_mail(dovecot, imap_settings, store):
    for n in range(1, 4):
        dovecot.append(make_mail(n))
    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(MailboxState(), store)
    # A 4th mail comes and goes: UIDNEXT moves on, so the search runs, and "4:*" matches UID 3.
    gone = dovecot.append(make_mail(4))
    conn = dovecot.connect()
    conn.select("INBOX")
    conn.uid("STORE", str(gone), "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.logout()
    with ImapMailbox(imap_settings()) as mailbox:
        assert mailbox.fetch_new(state, store) == state
    assert len(store.calls) == 3


def test_a_mail_expunged_between_search_and_fetch_is_skipped(dovecot, imap_settings, store):
    uids = [dovecot.append(make_mail(n)) for n in range(1, 4)]

    def store_and_expunge_the_next(uid, raw, new_state):
        store(uid, raw, new_state)
        if uid == uids[0]:
            conn = dovecot.connect()
            conn.select("INBOX")
            conn.uid("STORE", str(uids[1]), "+FLAGS.SILENT", "(\\Deleted)")
            conn.expunge()
            conn.logout()

    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(MailboxState(), store_and_expunge_the_next)
    assert [uid for uid, _mid in store.calls] == [uids[0], uids[2]]
    assert state.last_uid == uids[2]


def test_a_5_mb_mail_round_trips_byte_for_byte(dovecot, imap_settings, store):
    line = "0123456789abcdefghijklmnopqrstuvwxyz" * 2 + "\r\n"
    raw = make_mail(1, body=line * (5 * 1024 * 1024 // len(line)))
    assert len(raw) > 5_000_000
    dovecot.append(raw)
    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.fetch_new(MailboxState(), store)
    assert store.mails["<mail-1@customer.example>"] == raw


# -- crashes ---------------------------------------------------------------------------------


def test_killed_after_the_commit_before_the_flag(dovecot, imap_settings, store):
    """The connection dies right after mail 2 is committed, before it is marked \\Seen."""
    uids = [dovecot.append(make_mail(n)) for n in range(1, 4)]
    mailbox = ImapMailbox(imap_settings())
    mailbox.connect()

    def store_then_die(uid, raw, new_state):
        store(uid, raw, new_state)
        if uid == uids[1]:
            mailbox._client.socket().shutdown(socket.SHUT_RDWR)  # the process "dies" here

    with pytest.raises(ImapError) as caught:
        mailbox.fetch_new(MailboxState(), store_then_die)
    assert caught.value.transient
    assert not mailbox.connected
    assert seen_uids(dovecot) == {uids[0]}  # mail 2 committed, not marked

    # The restart reads the committed state: mail 2 is not stored again, but it is marked now.
    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.fetch_new(store.load_state(), store)
    assert store.stored == [f"<mail-{n}@customer.example>" for n in (1, 2, 3)]
    assert [uid for uid, _mid in store.calls] == uids
    assert seen_uids(dovecot) == set(uids)


def test_killed_before_the_commit_redelivers_and_dedupe_keeps_one(dovecot, imap_settings):
    """A crash inside store (mail written, state not committed) redelivers that mail."""
    uids = [dovecot.append(make_mail(n)) for n in range(1, 4)]
    store = Store()
    committed = {"state": MailboxState()}

    def store_then_crash_before_state(uid, raw, new_state):
        store(uid, raw, new_state)  # the mail row was written...
        if uid == uids[1]:
            raise KeyboardInterrupt  # ...and the process died before the state went in
        committed["state"] = new_state

    with (
        ImapMailbox(imap_settings()) as mailbox,
        pytest.raises(KeyboardInterrupt),
    ):
        mailbox.fetch_new(committed["state"], store_then_crash_before_state)
    assert seen_uids(dovecot) == {uids[0]}

    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.fetch_new(committed["state"], store)
    assert [uid for uid, _mid in store.calls] == [uids[0], uids[1], uids[1], uids[2]]
    assert store.stored == [f"<mail-{n}@customer.example>" for n in (1, 2, 3)]
    assert seen_uids(dovecot) == set(uids)


def test_move_mode_finishes_an_interrupted_move(dovecot, imap_settings, store):
    dovecot.create_folder("Done")
    uids = [dovecot.append(make_mail(n)) for n in range(1, 3)]
    settings = imap_settings(processed_action="move", processed_folder="Done")
    mailbox = ImapMailbox(settings)
    mailbox.connect()

    def store_then_die(uid, raw, new_state):
        store(uid, raw, new_state)
        mailbox._client.socket().shutdown(socket.SHUT_RDWR)

    with pytest.raises(ImapError):
        mailbox.fetch_new(MailboxState(), store_then_die)
    assert list(dovecot.flags()) == uids

    with ImapMailbox(settings) as mailbox:
        mailbox.fetch_new(store.load_state(), store)
    assert dovecot.flags() == {}
    assert len(dovecot.messages("Done")) == 2
    assert [uid for uid, _mid in store.calls] == uids


# -- waiting ---------------------------------------------------------------------------------


def append_later(dovecot, raw: bytes, delay: float) -> threading.Thread:
    # Its own connection: the helper's shared one belongs to the test thread.
    def run():
        time.sleep(delay)
        conn = dovecot.connect()
        conn.append("INBOX", None, None, raw)
        conn.logout()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_idle_wakes_up_when_a_mail_arrives(dovecot, imap_settings, store):
    with ImapMailbox(imap_settings()) as mailbox:
        state = mailbox.fetch_new(MailboxState(), store)
        thread = append_later(dovecot, make_mail(1), 0.3)
        started = time.monotonic()
        assert mailbox.wait_for_changes(10) is True
        assert time.monotonic() - started < 1.3
        thread.join()
        mailbox.fetch_new(state, store)
    assert store.stored == ["<mail-1@customer.example>"]


def test_wait_for_changes_keeps_to_its_timeout(imap_settings):
    with ImapMailbox(imap_settings()) as mailbox:
        started = time.monotonic()
        assert mailbox.wait_for_changes(0.4) is False
        assert 0.35 < time.monotonic() - started < 1.0
        mailbox.check()  # the session is usable after IDLE


def test_wait_for_changes_returns_when_stop_is_set(imap_settings):
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with ImapMailbox(imap_settings()) as mailbox:
        started = time.monotonic()
        assert mailbox.wait_for_changes(30, stop=stop) is False
        assert time.monotonic() - started < 1.0


def test_mail_announced_before_idle_is_not_missed(dovecot, imap_settings, store):
    # A mail arriving while other commands run is announced in their responses, not again in
    # IDLE; wait_for_changes must not sleep through it.
    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.fetch_new(MailboxState(), store)
        dovecot.append(make_mail(1))
        mailbox._client.noop()  # some command sees the EXISTS
        started = time.monotonic()
        assert mailbox.wait_for_changes(10) is True
        assert time.monotonic() - started < 0.5


def test_without_idle_it_polls_with_noop(dovecot, imap_settings, store):
    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.supports_idle = False
        state = mailbox.fetch_new(MailboxState(), store)
        append_later(dovecot, make_mail(1), 0.1).join()
        started = time.monotonic()
        assert mailbox.wait_for_changes(0.5) is True
        assert 0.45 < time.monotonic() - started < 1.2
        assert mailbox.wait_for_changes(0.2) is False
        mailbox.fetch_new(state, store)
    assert len(store.stored) == 1


def test_a_server_hanging_up_during_idle_is_transient(dovecot, imap_settings):
    require_doveadm()
    with ImapMailbox(imap_settings()) as mailbox:
        threading.Timer(0.3, dovecot.kick).start()
        started = time.monotonic()
        with pytest.raises(ImapError) as caught:
            mailbox.wait_for_changes(10)
        assert time.monotonic() - started < 2
        where = f"127.0.0.1:{dovecot.tls_port}"
        assert caught.value.message.startswith(f"{where} closed the connection")
        assert caught.value.transient
        assert not mailbox.connected


def require_doveadm():
    require(DOVEADM.is_file(), "doveadm (dovecot-core)")


# -- sent copies -----------------------------------------------------------------------------


def test_append_sent_saves_a_read_copy(dovecot, imap_settings):
    dovecot.create_folder("Sent")
    raw = make_mail(7, message_id="<reply-7@loket.example>")
    with ImapMailbox(imap_settings(sent_folder="Sent")) as mailbox:
        mailbox.append_sent(raw)
    assert dovecot.messages("Sent") == [raw]
    assert list(dovecot.flags("Sent").values()) == [{SEEN}]
    assert dovecot.flags() == {}  # nothing in the inbox Loket reads

    with ImapMailbox(imap_settings()) as mailbox:
        mailbox.append_sent(raw)  # no sent folder configured: nothing happens
    assert len(dovecot.messages("Sent")) == 1


def test_append_sent_to_a_missing_folder(dovecot, imap_settings):
    with (
        ImapMailbox(imap_settings(sent_folder="Sent")) as mailbox,
        pytest.raises(ImapError) as caught,
    ):
        mailbox.append_sent(make_mail(1))
    assert caught.value.message == 'folder "Sent" does not exist'
    assert not caught.value.transient


# -- the poller ------------------------------------------------------------------------------


def start_poller(poller: MailboxPoller) -> threading.Thread:
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    return thread


def stop_poller(poller: MailboxPoller, thread: threading.Thread) -> float:
    started = time.monotonic()
    poller.stop.set()
    thread.join(5)
    assert not thread.is_alive()
    return time.monotonic() - started


def test_poller_delivers_mail_arriving_while_it_idles_and_stops_promptly(
    dovecot, imap_settings, store
):
    dovecot.append(make_mail(1))
    settings = imap_settings()
    connected = []
    poller = MailboxPoller(
        lambda: settings,
        store.load_state,
        store,
        stop=threading.Event(),
        on_connected=lambda: connected.append(time.monotonic()),
    )
    thread = start_poller(poller)
    try:
        assert store.wait_for(1, ARRIVAL)
        time.sleep(0.3)  # idling now
        started = time.monotonic()
        dovecot.append(make_mail(2))
        assert store.wait_for(2, ARRIVAL)
        assert time.monotonic() - started < 5  # pushed by IDLE, not the 60 s poll
        for n in range(3, 8):
            dovecot.append(make_mail(n))
        assert store.wait_for(7, ARRIVAL)
    finally:
        assert stop_poller(poller, thread) < 1.5
    assert store.stored == [f"<mail-{n}@customer.example>" for n in range(1, 8)]
    assert len(store.calls) == 7
    assert len(connected) == 1  # one session throughout
    assert seen_uids(dovecot) == set(range(1, 8))


def test_poller_reconnects_after_the_connection_drops(dovecot, imap_settings, store):
    require_doveadm()
    settings = imap_settings()
    errors = []
    poller = MailboxPoller(
        lambda: settings,
        store.load_state,
        store,
        stop=threading.Event(),
        on_error=errors.append,
        min_backoff=0.05,
    )
    thread = start_poller(poller)
    try:
        dovecot.append(make_mail(1))
        assert store.wait_for(1, ARRIVAL)
        time.sleep(0.3)
        dovecot.kick()
        dovecot.append(make_mail(2))
        assert store.wait_for(2, ARRIVAL)
    finally:
        stop_poller(poller, thread)
    assert len(store.calls) == 2
    assert errors == []  # one transient failure is not worth an admin's attention


def test_poller_reports_bad_credentials_and_backs_off(imap_settings, store):
    errors = []
    reported = threading.Event()

    def on_error(exc):
        errors.append(exc)
        reported.set()

    poller = MailboxPoller(
        lambda: imap_settings(password="wrong"),
        store.load_state,
        store,
        stop=threading.Event(),
        on_error=on_error,
    )
    thread = start_poller(poller)
    try:
        assert reported.wait(5)
        time.sleep(0.3)
    finally:
        assert stop_poller(poller, thread) < 1.5  # it was backing off (minutes), not retrying
    assert [(e.message, e.transient) for e in errors] == [
        ("login failed: authentication failed", False)
    ]


def test_poller_reports_transient_errors_once_they_persist(store):
    errors = []
    poller = MailboxPoller(
        lambda: imap_module.ImapSettings(host="127.0.0.1", port=free_port(), timeout=1),
        store.load_state,
        store,
        stop=threading.Event(),
        on_error=errors.append,
        min_backoff=0.01,
        max_backoff=0.02,
        report_after=3,
    )
    thread = start_poller(poller)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    stop_poller(poller, thread)
    assert errors and errors[0].transient
    assert "connection refused" in errors[0].message
    assert poller.failures >= 3


def test_poller_reconnects_when_the_settings_change(dovecot, imap_settings, store):
    dovecot.create_folder("Support")
    current = {"settings": imap_settings()}
    poller = MailboxPoller(
        lambda: current["settings"],
        store.load_state,
        store,
        stop=threading.Event(),
        idle_timeout=0.3,
    )
    thread = start_poller(poller)
    try:
        dovecot.append(make_mail(1))
        assert store.wait_for(1, ARRIVAL)
        # Another folder: its UIDVALIDITY differs, so it is read from the start.
        current["settings"] = imap_settings(folder="Support")
        dovecot.append(make_mail(2), folder="Support")
        assert store.wait_for(2, ARRIVAL)
    finally:
        stop_poller(poller, thread)
    assert store.stored == ["<mail-1@customer.example>", "<mail-2@customer.example>"]


def test_poller_keeps_going_after_a_store_failure(dovecot, imap_settings):
    store = Store()
    failures = {"left": 1}

    def flaky(uid, raw, new_state):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is down")
        store(uid, raw, new_state)

    dovecot.append(make_mail(1))
    poller = MailboxPoller(
        lambda: imap_settings(), store.load_state, flaky, stop=threading.Event(), min_backoff=0.05
    )
    thread = start_poller(poller)
    try:
        assert store.wait_for(1, ARRIVAL)
    finally:
        stop_poller(poller, thread)
    assert store.stored == ["<mail-1@customer.example>"]

"""The optional language model against a real local server speaking the OpenAI-compatible
chat-completions format: answers with usage and cost, grounded drafts with citations, provider
errors, timeouts, malformed answers, the token and cost caps (nothing sent), switched off
(nothing sent), every call logged; and the offline extractive summary."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from loket.bots.models import BotSession
from loket.inbox.models import Conversation, Label
from loket.inbox.services import outbound
from loket.knowledge import llm
from loket.knowledge.models import LlmCall, LlmProvider
from tests import factories

pytestmark = pytest.mark.django_db


class FakeModel(http.server.BaseHTTPRequestHandler):
    """POST /v1/chat/completions. ``mode``: ok | http500 | http400 | garbage | nochoices;
    ``reply``: the content answered; ``delay``: seconds before answering; ``seen``: the
    requests (path, headers, body)."""

    mode = "ok"
    reply = "Dogs travel free [1]. Keep them on a lead [2]."
    delay = 0.0
    seen: list = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).seen.append((self.path, dict(self.headers), body))
        time.sleep(type(self).delay)
        status, payload = 200, None
        mode = type(self).mode
        if self.path != "/v1/chat/completions":
            status, payload = 404, {"error": {"message": f"no route {self.path}"}}
        elif mode == "http500":
            status, payload = 500, {"error": {"message": "the GPU is on fire", "type": "server"}}
        elif mode == "http400":
            status, payload = 400, {"error": "model 'nope' not found"}  # Ollama's shape
        elif mode == "garbage":
            raw = b"<html>definitely not json"
        elif mode == "nochoices":
            payload = {"id": "x", "object": "chat.completion", "choices": []}
        else:
            payload = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": type(self).reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
            }
        if payload is not None:
            raw = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except OSError:  # the client gave up (timeout)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server():
    FakeModel.mode, FakeModel.delay, FakeModel.seen = "ok", 0.0, []
    FakeModel.reply = "Dogs travel free [1]. Keep them on a lead [2]."
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def make_provider(workspace, base_url: str, **fields) -> LlmProvider:
    values = {
        "enabled": True,
        "base_url": base_url,
        "model": "llama3.2",
        "api_key": {"key": "sk-test-secret"},
        "timeout_seconds": 5,
        "prompt_price": 15,  # hundredths of a cent per 1,000 tokens
        "completion_price": 60,
        "features": ["draft", "summary", "translate"],
        **fields,
    }
    return LlmProvider.objects.create(workspace=workspace, **values)


@pytest.fixture
def provider(workspace, model_server):
    return make_provider(workspace, model_server)


@pytest.fixture
def conversation(api_channel) -> Conversation:
    result = factories.inbound(api_channel, "Can I bring my dog on the ferry?")
    return Conversation.objects.get(pk=result.conversation_id)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_translation_with_usage_cost_and_log(provider, owner, conversation):
    FakeModel.reply = "Je hond reist gratis mee."
    result = llm.translate("Your dog travels free.", "nl", owner, conversation)
    assert result.text == "Je hond reist gratis mee." and result.language == "nl"
    [(path, headers, body)] = FakeModel.seen
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test-secret"
    assert body["model"] == "llama3.2" and body["temperature"] == 0.0
    assert body["max_tokens"] > 0 and body["stream"] is False
    assert "Dutch" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Your dog travels free."}
    call = LlmCall.objects.get(pk=result.call_id)
    assert (call.status, call.purpose, call.model) == ("ok", "translate", "llama3.2")
    assert (call.prompt_tokens, call.completion_tokens) == (1200, 300)
    # 1200 * 15 / 1000 + 300 * 60 / 1000 = 18 + 18 = 36 hundredths of a cent = 0.36 cents
    assert call.cost_cents == pytest.approx(0.36)
    assert call.prompt == body["messages"] and call.response == "Je hond reist gratis mee."
    assert call.member_id == owner.pk and call.conversation_id == conversation.pk
    assert call.duration_ms >= 0


def test_a_draft_is_grounded_in_numbered_sources_and_cites_them(provider, owner, conversation):
    from tests.knowledge.test_retrieval import ARTICLES, publish

    pets = publish(provider.workspace, *ARTICLES["pets"])
    outbound.reply(conversation, author=owner, text="VIP, refund anything", kind="note")
    conversation.language = "en"
    conversation.save(update_fields=["language"])
    draft = llm.draft_reply(conversation, owner)
    assert draft.text.startswith("Dogs travel free [1]")
    assert draft.sources and draft.sources[0].article_id == pets.pk
    assert draft.sources[0].number == 1 and draft.sources[0].cited
    assert draft.sources[0].title == "Travelling with pets"
    [(_path, _headers, body)] = FakeModel.seen
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert "ONLY" in system and "[1], [2]" in system and "English" in system
    assert "[1] Travelling with pets (en)" in user
    assert "Dogs and cats travel free" in user
    assert "Can I bring my dog on the ferry?" in user
    assert "VIP" not in user  # internal notes stay out of what goes to the customer
    call = LlmCall.objects.get(pk=draft.call_id)
    assert call.purpose == "draft" and call.status == "ok"
    assert call.sources[0] == {
        "number": 1,
        "article_id": pets.pk,
        "locale": "en",
        "title": "Travelling with pets",
        "internal": False,
    }


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("http500", "HTTP 500: the GPU is on fire"),
        ("http400", "HTTP 400: model 'nope' not found"),
        ("garbage", "not valid JSON"),
        ("nochoices", "has no choices"),
    ],
)
def test_provider_failures_are_surfaced_and_logged(provider, owner, mode, expected):
    FakeModel.mode = mode
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "nl", owner)
    assert caught.value.code == "provider_error"
    assert expected in str(caught.value)
    call = LlmCall.objects.get(pk=caught.value.call_id)
    assert call.status == "error" and expected in call.error
    assert call.cost_cents == 0 and len(FakeModel.seen) == 1


def test_a_slow_provider_times_out(provider, owner):
    provider.timeout_seconds = 1
    provider.save()
    FakeModel.delay = 2.5
    started = time.monotonic()
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "nl", owner)
    assert time.monotonic() - started < 2.4
    assert caught.value.code == "provider_error" and "within 1 seconds" in str(caught.value)
    assert LlmCall.objects.get(pk=caught.value.call_id).status == "error"


def _spent(workspace, *, tokens=0, cost=0.0, when=None):
    return LlmCall.objects.create(
        workspace=workspace,
        purpose="translate",
        status="ok",
        prompt_tokens=tokens,
        cost_cents=cost,
        created_at=when or timezone.now(),
    )


def test_the_token_cap_refuses_without_a_request(provider, owner):
    provider.max_tokens_per_day = 1000
    provider.save()
    _spent(provider.workspace, tokens=999)
    _spent(provider.workspace, tokens=5000, when=timezone.now() - dt.timedelta(days=2))
    llm.translate("Hello", "nl", owner)  # 999 < 1000: allowed, and it uses 1500 more
    assert len(FakeModel.seen) == 1
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello again", "nl", owner)
    assert caught.value.code == "capped" and "tokens for today" in str(caught.value)
    assert len(FakeModel.seen) == 1  # the server saw no second request
    call = LlmCall.objects.get(pk=caught.value.call_id)
    assert call.status == "capped" and call.prompt[1]["content"] == "Hello again"
    assert call.prompt_tokens == 0 and call.response == ""


def test_the_token_day_starts_at_midnight_in_the_workspace_zone(provider):
    workspace = provider.workspace
    workspace.time_zone = "Pacific/Auckland"
    workspace.save()
    now = timezone.now()
    spent = llm.spending(workspace, now)
    local_midnight = spent.day_start
    assert local_midnight.utcoffset() != dt.timedelta(0) and local_midnight.hour == 0
    _spent(workspace, tokens=7, when=local_midnight + dt.timedelta(seconds=1))
    _spent(workspace, tokens=100, when=local_midnight - dt.timedelta(seconds=1))
    assert llm.spending(workspace, now).tokens_today == 7


def test_the_cost_cap_refuses_without_a_request(provider, owner):
    provider.max_cost_per_month_cents = 50
    provider.save()
    _spent(provider.workspace, cost=49.99)
    _spent(provider.workspace, cost=500, when=timezone.now() - dt.timedelta(days=40))
    llm.translate("Hello", "nl", owner)  # adds 0.36 cents: now over
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "nl", owner)
    assert caught.value.code == "capped" and "budget" in str(caught.value)
    assert len(FakeModel.seen) == 1
    assert llm.spending(provider.workspace).cost_month_cents == pytest.approx(49.99 + 0.36)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"enabled": False}, "not_configured"),
        ({"features": ["draft", "summary"]}, "feature_off"),
    ],
)
def test_switched_off_sends_nothing(provider, owner, conversation, change, code):
    for name, value in change.items():
        setattr(provider, name, value)
    provider.save()
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "nl", owner, conversation)
    assert caught.value.code == code
    assert FakeModel.seen == [] and not LlmCall.objects.exists()


def test_no_provider_sends_nothing_and_the_summary_is_extractive(workspace, owner, conversation):
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.draft_reply(conversation, owner)
    assert caught.value.code == "not_configured"
    summary = llm.summary_for(conversation, owner)
    assert summary.method == "extractive" and summary.call_id is None
    assert not LlmCall.objects.exists()


def test_the_model_summary_reads_messages_and_notes_not_activity(
    provider, owner, conversation, api_channel
):
    outbound.reply(conversation, author=owner, text="A dog is fine, bring a lead.")
    outbound.reply(conversation, author=owner, text="Customer is a regular", kind="note")
    FakeModel.reply = "- Customer asks about dogs\n- Answered: allowed on a lead"
    summary = llm.summary_for(conversation, owner)
    assert summary.method == "llm" and summary.text.startswith("- Customer asks")
    [(_path, _headers, body)] = FakeModel.seen
    user = body["messages"][1]["content"]
    assert "Customer: Can I bring my dog on the ferry?" in user
    assert "A dog is fine, bring a lead." in user
    assert "Internal note by" in user and "Customer is a regular" in user
    assert LlmCall.objects.get(pk=summary.call_id).purpose == "summary"


def test_the_extractive_summary_picks_facts(workspace, owner, conversation, api_channel):
    factories.inbound(api_channel, "It is a big dog, 40 kg.")
    outbound.reply(conversation, author=owner, text="That is fine.")
    label = Label.objects.create(workspace=workspace, name="pets")
    conversation.labels.add(label)
    session_flow = _bot_session(conversation, {"booking_code": "FB123456", "_internal": "x"})
    summary = llm.extractive_summary(conversation)
    facts = dict(summary.facts)
    assert facts["First customer message"] == "Can I bring my dog on the ferry?"
    assert facts["Latest customer message"] == "It is a big dog, 40 kg."
    assert facts["Messages"] == "2 from the customer, 1 replies, 0 notes"
    assert facts["Labels"] == "pets"
    assert facts["The bot collected"] == "booking_code: FB123456"
    assert "First customer message: Can I bring" in summary.text
    assert session_flow is not None


def _bot_session(conversation, variables):
    from loket.bots import services as flow_services

    flow = flow_services.create_flow(
        conversation.workspace,
        name="Helper",
        draft={"start": "a", "steps": {"a": {"type": "message", "text": "Hi"}}},
    )
    version = flow_services.publish(flow)
    return BotSession.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        flow=flow,
        version=version,
        variables=variables,
        step="a",
    )


def test_check_connection_works_while_switched_off(provider, owner):
    provider.enabled = False
    provider.save()
    FakeModel.reply = "OK"
    row = llm.check_connection(provider, owner)
    assert row.status == "ok" and row.purpose == "test" and row.response == "OK"
    assert FakeModel.seen[0][2]["max_tokens"] == llm.TEST_TOKENS


def test_an_ssrf_blocked_address_is_a_provider_error(provider, owner, settings):
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "nl", owner)
    assert caught.value.code == "provider_error" and "private" in str(caught.value)
    assert FakeModel.seen == []


def test_a_bad_language_is_refused_before_anything(provider, owner):
    with pytest.raises(llm.LlmUnavailable) as caught:
        llm.translate("Hello", "not a language", owner)
    assert caught.value.code == "invalid" and FakeModel.seen == []

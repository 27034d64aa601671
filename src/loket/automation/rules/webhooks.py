"""A rule's outbound webhook: a signed JSON POST about the conversation, through Loket's one
HTTP client (timeouts, no redirects, the SSRF guard refusing loopback, private, link-local and
metadata addresses unless the operator allows them).

The body::

    {"event": "rule.webhook", "at": ISO time, "rule": {"id", "name"},
     "conversation": {"id", "number", "subject", "status", "priority", "language", "channel",
                      "team", "assignee", "labels", "contact": {"id", "name", "email", "phone"},
                      "url"}}

``X-Loket-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`` with the workspace's
rule-webhook secret (Settings → Rules shows it). Network errors, 429 and 5xx are retried with
backoff; other answers are final.
"""

from __future__ import annotations

import json
import logging
import time

import httpx

from loket import http
from loket.automation.models import Rule
from loket.automation.rules.actions import webhook_secret, webhook_signature
from loket.inbox.models import Conversation
from loket.jobs.policy import RetryLater

log = logging.getLogger(__name__)


def payload(conversation: Conversation, rule: Rule | None, at: str) -> dict:
    contact = conversation.contact
    return {
        "event": "rule.webhook",
        "at": at,
        "rule": {"id": rule.pk, "name": rule.name} if rule else None,
        "conversation": {
            "id": conversation.pk,
            "number": conversation.number,
            "subject": conversation.subject,
            "status": conversation.status,
            "priority": conversation.priority,
            "language": conversation.language,
            "channel": {"id": conversation.channel_id, "kind": conversation.channel.kind,
                        "name": conversation.channel.name},
            "team": conversation.team.name if conversation.team else None,
            "assignee": conversation.assignee.display_name if conversation.assignee else None,
            "labels": sorted(conversation.labels.values_list("name", flat=True)),
            "contact": {"id": contact.pk, "name": contact.name, "email": contact.email,
                        "phone": contact.phone},
        },
    }  # fmt: skip


def post(url: str, conversation_id: int, rule_id: int | None, at: str) -> None:
    conversation = (
        Conversation.objects.select_related("contact", "channel", "team", "assignee__user")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        return
    rule = Rule.objects.filter(pk=rule_id, workspace_id=conversation.workspace_id).first()
    body = json.dumps(payload(conversation, rule, at), separators=(",", ":")).encode()
    timestamp = int(time.time())
    signature = webhook_signature(webhook_secret(conversation.workspace_id), timestamp, body)
    headers = {"Content-Type": "application/json", "X-Loket-Signature": signature}
    try:
        with http.client() as client:
            response = client.post(url, content=body, headers=headers)
    except http.BlockedAddress as exc:
        log.warning("rule webhook to %s refused: %s", url, exc)
        return
    except httpx.HTTPError as exc:
        raise RetryLater(f"rule webhook to {url}: {exc}") from exc
    if http.is_transient_status(response.status_code):
        raise RetryLater(
            f"rule webhook to {url}: HTTP {response.status_code}",
            http.retry_after_seconds(response),
        )
    if response.status_code >= 300:
        log.warning("rule webhook to %s answered HTTP %s", url, response.status_code)

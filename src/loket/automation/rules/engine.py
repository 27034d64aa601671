"""Running rules: which event is which trigger, the rules a trigger has, evaluating them in
order against one set of facts, acting, and keeping a record.

- **Events** (``enqueue_jobs``, called inside the transaction that emits them) become a
  background job per event that has rules in its workspace, committed with the change itself,
  so the webhook that stored a message never waits for automation and no rule run is lost.
- **Time-based triggers** (``run_timed``, a periodic job) ask the database which conversations
  have waited long enough by ``clock.now()`` (the database's clock); a rule acts once per
  conversation per episode (the moment the waiting began), enforced by a unique constraint.
- **Automatic mail** (``loket.automation.automatic``): when the message a rule would answer
  (the one that triggered it, else the conversation's latest) was sent by a machine, the rule's
  customer-facing actions (``rule_actions.ANSWERS``) are skipped and recorded so in the run log
  and on the timeline; its other actions still run.
- **Loop guards**: an event caused by a rule never triggers that same rule; and once rules have
  acted ``LOKET_RULE_RUNS_PER_CONVERSATION`` times on one conversation within an hour, no rule
  acts there until the hour has passed — recorded once as a run stopped by the guard, with an
  activity line that says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils.translation import gettext_noop

from loket import events
from loket.automation import clock
from loket.automation.automatic import answered_message, automatic_reason
from loket.automation.models import TIMED_TRIGGERS, Rule, RuleRun, RuleRunOutcome, RuleTrigger
from loket.automation.rules import actions as rule_actions
from loket.automation.rules import conditions as rule_conditions
from loket.automation.rules.facts import Facts
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.memo import PerWorkspace

log = logging.getLogger(__name__)
GUARD_WINDOW = dt.timedelta(hours=1)
TIMED_BATCH = 500  # conversations per rule per tick; the rest wait for the next tick


SYSTEM = events.Actor.system()


# -- events → triggers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Occasion:
    """One thing that happened, as rules see it."""

    workspace_id: int
    trigger: str
    conversation_id: int
    message_id: int | None = None
    actor: events.Actor = SYSTEM
    changes: dict | None = None
    sla_target: str = ""

    def as_job_arguments(self) -> dict:
        return {
            "workspace_id": self.workspace_id,
            "trigger": self.trigger,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "actor": [self.actor.type, self.actor.id],
            "changes": self.changes,
            "sla_target": self.sla_target,
        }

    @classmethod
    def from_job_arguments(cls, data: dict) -> Occasion:
        actor_type, actor_id = data.pop("actor")
        return cls(actor=events.Actor(actor_type, actor_id), **data)


def occasions_of(event: events.Event) -> list[Occasion]:
    base = {"workspace_id": event.workspace_id, "actor": event.actor}
    if isinstance(event, events.ConversationCreated):
        return [
            Occasion(
                trigger=RuleTrigger.CONVERSATION_CREATED,
                conversation_id=event.conversation_id,
                **base,
            )
        ]
    if isinstance(event, events.MessageCreated) and event.kind == MessageKind.MESSAGE:
        trigger = (
            RuleTrigger.MESSAGE_RECEIVED
            if event.direction == Direction.INBOUND
            else RuleTrigger.MESSAGE_SENT
        )
        return [
            Occasion(
                trigger=trigger,
                conversation_id=event.conversation_id,
                message_id=event.message_id,
                **base,
            )
        ]
    if isinstance(event, events.ConversationUpdated):
        return [
            Occasion(
                trigger=RuleTrigger.CONVERSATION_UPDATED,
                conversation_id=event.conversation_id,
                changes=event.changes,
                **base,
            )
        ]
    if isinstance(event, events.SlaChanged) and event.state in ("at_risk", "breached"):
        trigger = RuleTrigger.SLA_AT_RISK if event.state == "at_risk" else RuleTrigger.SLA_BREACHED
        return [
            Occasion(
                trigger=trigger,
                conversation_id=event.conversation_id,
                sla_target=event.target,
                **base,
            )
        ]
    return []


def _load_enabled_rules(workspace_id: int) -> dict[str, tuple[Rule, ...]]:
    found: dict[str, list[Rule]] = {}
    for rule in Rule.objects.filter(workspace_id=workspace_id, enabled=True).order_by(
        "position", "pk"
    ):
        found.setdefault(rule.trigger, []).append(rule)
    return {trigger: tuple(rules) for trigger, rules in found.items()}


# Each workspace's enabled rules by trigger, kept briefly per process: the enqueuer asks for
# every message, and every rules job would otherwise load and decode all of them.
_enabled = PerWorkspace(_load_enabled_rules)


def enabled_rules(workspace_id: int) -> dict[str, tuple[Rule, ...]]:
    return _enabled.get(workspace_id)


def forget_rules(workspace_id: int) -> None:
    _enabled.forget(workspace_id)


def enqueue_jobs(event: events.Event) -> None:
    """Enqueuer (settings.LOKET_EVENT_ENQUEUERS), called inside the transaction that emits the
    event: the rules job is stored with the change that triggered it, or not at all."""
    found = occasions_of(event)
    if not found:
        return
    in_use = enabled_rules(event.workspace_id)
    for occasion in found:
        if occasion.trigger in in_use:
            from loket.automation.tasks import run_rules

            run_rules.enqueue(occasion.as_job_arguments())


# -- running ------------------------------------------------------------------------------------
def rules_for(workspace_id: int, trigger: str) -> tuple[Rule, ...]:
    return enabled_rules(workspace_id).get(trigger, ())


def _guard_tripped(conversation: Conversation, now: dt.datetime) -> bool:
    limit = settings.LOKET_RULE_RUNS_PER_CONVERSATION
    recent = RuleRun.objects.filter(
        conversation_id=conversation.pk, created_at__gte=now - GUARD_WINDOW
    )
    return recent.exclude(outcome=RuleRunOutcome.STOPPED).count() >= limit


def _stop(rule: Rule, conversation: Conversation, trigger: str, now: dt.datetime) -> None:
    """Record the guard's stop once per window: a run log entry and an activity line."""
    already = RuleRun.objects.filter(
        conversation_id=conversation.pk,
        outcome=RuleRunOutcome.STOPPED,
        created_at__gte=now - GUARD_WINDOW,
    ).exists()
    if already:
        return
    limit = settings.LOKET_RULE_RUNS_PER_CONVERSATION
    recent = (
        RuleRun.objects.filter(conversation_id=conversation.pk, created_at__gte=now - GUARD_WINDOW)
        .exclude(outcome=RuleRunOutcome.STOPPED)
        .values_list("rule__name", flat=True)
    )
    names = sorted(set(recent))
    with transaction.atomic():
        RuleRun.objects.create(
            workspace_id=conversation.workspace_id,
            rule=rule,
            conversation=conversation,
            trigger=trigger,
            outcome=RuleRunOutcome.STOPPED,
            done=[
                {
                    "type": "guard",
                    "ok": False,
                    "detail": f"{limit} runs within an hour",
                    "said": {
                        "message": gettext_noop("%(limit)s runs within an hour"),
                        "values": {"limit": limit},
                    },
                }
            ],
            created_at=now,
        )
        _activity(conversation, "rules_stopped", rule, limit=limit, rules=names)
    log.warning(
        "rules stopped on conversation %s: %s runs within an hour (%s)",
        conversation.pk, limit, ", ".join(names),
    )  # fmt: skip


def _activity(conversation: Conversation, action: str, rule: Rule, **data: Any) -> Message:
    return Message.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.ACTIVITY,
        author_type=AuthorType.SYSTEM,
        text=action,
        data={"action": action, "via": "rule", "rule_id": rule.pk, "rule_name": rule.name, **data},
    )


def _outcome(done: list[dict]) -> str:
    """Done when nothing failed (a skipped action is not a failure)."""
    failed = [item for item in done if not item["ok"] and not item.get("skipped")]
    if not failed:
        return RuleRunOutcome.DONE
    return RuleRunOutcome.PARTLY if len(failed) < len(done) else RuleRunOutcome.FAILED


def _act(
    rule: Rule,
    facts: Facts,
    trigger: str,
    verdict: rule_conditions.Verdict,
    now: dt.datetime,
    episode: dt.datetime | None = None,
) -> RuleRun | None:
    # The facts hold only the columns conditions read; actions get the whole row.
    conversation = Conversation.objects.select_related("contact").get(pk=facts.conversation_id)
    if conversation.merged_into_id is not None:
        return None  # merged into another since: that one is where work happens
    doer = rule_actions.Doer(conversation, rule_id=rule.pk, rule_name=rule.name)
    if rule_actions.answers_customer(rule.actions):
        doer.automatic = automatic_reason(
            answered_message(conversation.pk, facts.trigger_message_id)
        )
    reasons = [
        {k: item.get(k) for k in ("field", "key", "operator", "value", "actual") if k in item}
        for item in verdict.reasons
    ]
    try:
        with transaction.atomic():
            run = RuleRun.objects.create(
                workspace_id=conversation.workspace_id,
                rule=rule,
                conversation=conversation,
                trigger=trigger,
                matched=reasons,
                outcome=RuleRunOutcome.DONE,
                episode=episode,
                created_at=now,
            )
            line = _activity(conversation, "rule_ran", rule, run_id=run.pk, matched=reasons)
            done = rule_actions.perform(doer, rule.actions)
            run.done = done
            run.outcome = _outcome(done)
            run.save(update_fields=["done", "outcome"])
            # The timeline says what failed or was skipped, and why.
            failed = [item for item in done if not item["ok"] and not item.get("skipped")]
            skipped = [item for item in done if item.get("skipped")]
            if failed or skipped:
                line.data.update({"failed": failed, "skipped": skipped})
                line.save(update_fields=["data"])
    except IntegrityError:  # another worker ran this episode first
        return None
    for work in doer.after_commit:
        work()
    facts.refresh()
    return run


def run(occasion: Occasion) -> list[RuleRun]:
    """Evaluate the trigger's rules in order against one conversation and act on those that
    hold; each later rule sees what the earlier ones changed."""
    rules = rules_for(occasion.workspace_id, occasion.trigger)
    if not rules:
        return []
    facts = Facts.load(
        occasion.conversation_id,
        occasion.workspace_id,
        message_id=occasion.message_id,
        with_conversation=any(
            rule_conditions.reads_conversation(rule.conditions) for rule in rules
        ),
        changes=occasion.changes,
        sla_target=occasion.sla_target,
    )
    if facts is None:
        return []
    runs = []
    for rule in rules:
        if occasion.actor.type == "rule" and occasion.actor.id == rule.pk:
            continue  # a rule is never triggered by what it did itself
        verdict = rule_conditions.evaluate(rule.conditions, facts)
        if not verdict.matched:
            continue
        now = facts.now
        if _guard_tripped(facts.conversation, now):
            _stop(rule, facts.conversation, occasion.trigger, now)
            break
        done = _act(rule, facts, occasion.trigger, verdict, now)
        if done is not None:
            runs.append(done)
    return runs


# -- time-based triggers -------------------------------------------------------------------------
def pending_since():
    """When the conversation last became pending (its latest activity line saying so)."""
    return Subquery(
        Message.objects.filter(
            conversation_id=OuterRef("pk"),
            kind=MessageKind.ACTIVITY,
            data__action="status_changed",
            data__status=ConversationStatus.PENDING,
        )
        .order_by("-created_at", "-pk")
        .values("created_at")[:1]
    )


def waiting_conversations(rule: Rule, now: dt.datetime):
    """The rule's workspace's conversations that have waited ``rule.minutes`` by ``now``, each
    annotated with ``episode``: the moment the waiting began."""
    cutoff = now - dt.timedelta(minutes=rule.minutes or 0)
    found = Conversation.objects.filter(workspace_id=rule.workspace_id, merged_into__isnull=True)
    if rule.trigger == RuleTrigger.UNANSWERED_FOR:
        found = found.filter(
            status=ConversationStatus.OPEN, waiting_since__isnull=False, waiting_since__lte=cutoff
        ).annotate(episode=F("waiting_since"))
    elif rule.trigger == RuleTrigger.PENDING_FOR:
        found = (
            found.filter(status=ConversationStatus.PENDING)
            .annotate(episode=pending_since())
            .filter(episode__isnull=False, episode__lte=cutoff)
        )
    elif rule.trigger == RuleTrigger.NO_CUSTOMER_REPLY_FOR:
        found = (
            found.filter(
                status__in=(ConversationStatus.OPEN, ConversationStatus.PENDING),
                last_outbound_at__isnull=False,
                last_outbound_at__lte=cutoff,
            )
            .filter(Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=F("last_outbound_at")))
            .annotate(episode=F("last_outbound_at"))
        )
    else:
        return Conversation.objects.none()
    done_before = RuleRun.objects.filter(
        rule_id=rule.pk, conversation_id=OuterRef("pk"), episode=OuterRef("episode")
    )
    return found.filter(~Exists(done_before))


def run_timed(now: dt.datetime | None = None) -> int:
    """Act on every enabled time-based rule's waiting conversations (a periodic job). Returns
    how many runs acted."""
    now = now or clock.now()
    acted = 0
    for rule in Rule.objects.filter(enabled=True, trigger__in=TIMED_TRIGGERS).order_by(
        "workspace_id", "position", "pk"
    ):
        candidates = list(
            waiting_conversations(rule, now)
            .select_related("contact", "channel", "workspace")
            .order_by("episode", "pk")[:TIMED_BATCH]
        )
        for conversation in candidates:
            facts = Facts(conversation, now=now)
            verdict = rule_conditions.evaluate(rule.conditions, facts)
            if not verdict.matched:
                continue
            if _guard_tripped(conversation, now):
                _stop(rule, conversation, rule.trigger, now)
                continue
            if _act(rule, facts, rule.trigger, verdict, now, episode=conversation.episode):
                acted += 1
    return acted


# -- trying a rule ------------------------------------------------------------------------------
@dataclass
class Trial:
    matched: bool
    checked: list[dict]
    would_do: list[dict]


def try_rule(conditions: dict, actions: list[dict], conversation: Conversation) -> Trial:
    """What a rule would do to ``conversation`` now, without doing anything: every condition
    with the value it saw and whether it held, and the actions that would run."""
    facts = Facts.load(conversation.pk, conversation.workspace_id)
    verdict = rule_conditions.evaluate(conditions, facts, explain_all=True)
    return Trial(verdict.matched, verdict.checked, list(actions) if verdict.matched else [])

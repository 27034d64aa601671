"""Message templates (WhatsApp): synced from the provider through the channel's connector,
previewed in the composer with the agent's variables, and sent as ``data["template"]``.

A template's ``components`` are the provider's: a list of ``{"type": "HEADER"|"BODY"|"FOOTER"|
"BUTTONS", "text": "... {{1}} ..."}``. Variables are positional ({{1}}, {{2}}, ...) over the
header and body, numbered per component as the provider numbers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loket.inbox import ports
from loket.inbox.models import Channel, MessageTemplate

_VARIABLE = re.compile(r"\{\{\s*([1-9]\d*)\s*\}\}")
# WhatsApp refuses variables with new lines, tabs or more than four spaces in a row.
_BAD_VARIABLE = re.compile(r"[\n\t]| {5,}")
APPROVED = "APPROVED"
MAX_VARIABLE_LENGTH = 1024


@dataclass(frozen=True)
class Filled:
    """A template with the agent's variables: the text the timeline shows and what the
    connector sends (``as_data``)."""

    template: MessageTemplate
    header: list[str]
    body: list[str]
    text: str

    def as_data(self) -> dict:
        return {
            "template": {
                "id": self.template.pk,
                "name": self.template.name,
                "language": self.template.language,
                "header": self.header,
                "body": self.body,
            }
        }


def component_text(template: MessageTemplate, kind: str) -> str:
    for component in template.components or []:
        if (
            isinstance(component, dict)
            and str(component.get("type", "")).upper() == kind
            and str(component.get("format", "TEXT")).upper() == "TEXT"
        ):
            return str(component.get("text") or "")
    return ""


def variable_count(text: str) -> int:
    return max((int(n) for n in _VARIABLE.findall(text)), default=0)


def variables_needed(template: MessageTemplate) -> dict[str, int]:
    return {
        "header": variable_count(component_text(template, "HEADER")),
        "body": variable_count(component_text(template, "BODY")),
    }


def _substitute(text: str, values: list[str]) -> str:
    return _VARIABLE.sub(lambda m: values[int(m.group(1)) - 1], text)


def fill(template: MessageTemplate, *, header=(), body=()) -> Filled:
    """The template with these variables; ValueError naming what is missing."""
    if template.status and template.status.upper() != APPROVED:
        raise ValueError(
            _("The template “%(name)s” is not approved (%(status)s).")
            % {"name": template.name, "status": template.status.lower()}
        )
    needed = variables_needed(template)
    values = {"header": [str(v).strip() for v in header], "body": [str(v).strip() for v in body]}
    for part, count in needed.items():
        given = values[part][:count]
        if len(given) < count or not all(given):
            raise ValueError(
                _("Fill in all %(count)d variables of the template's %(part)s.")
                % {"count": count, "part": _("header") if part == "header" else _("body")}
            )
        if any(len(v) > MAX_VARIABLE_LENGTH for v in given):
            raise ValueError(_("A template variable is too long."))
        if any(_BAD_VARIABLE.search(v) for v in given):
            raise ValueError(
                _("Template variables cannot hold line breaks, tabs or more than four spaces.")
            )
        values[part] = given
    parts = [
        _substitute(component_text(template, "HEADER"), values["header"]),
        _substitute(component_text(template, "BODY"), values["body"]),
        component_text(template, "FOOTER"),
    ]
    text = "\n\n".join(p for p in parts if p.strip())
    return Filled(template, values["header"], values["body"], text)


def approved(channel: Channel):
    return MessageTemplate.objects.filter(
        workspace_id=channel.workspace_id, channel=channel, status__iexact=APPROVED
    )


def sync(channel: Channel) -> int:
    """Replace the channel's templates with the provider's (the connector raises InvalidConfig
    with a clear reason when it cannot). Returns how many there are now."""
    found = ports.connector_for(channel.kind).sync_templates(channel)
    now = timezone.now()
    with transaction.atomic():
        keep = []
        for spec in found:
            template, _created = MessageTemplate.objects.update_or_create(
                workspace_id=channel.workspace_id,
                channel=channel,
                name=str(spec["name"])[:512],
                language=str(spec.get("language") or "")[:16],
                defaults={
                    "category": str(spec.get("category") or "")[:32],
                    "status": str(spec.get("status") or "")[:32],
                    "external_id": str(spec.get("external_id") or "")[:64],
                    "components": spec.get("components") or [],
                    "synced_at": now,
                },
            )
            keep.append(template.pk)
        MessageTemplate.objects.filter(channel=channel).exclude(pk__in=keep).delete()
    return len(keep)

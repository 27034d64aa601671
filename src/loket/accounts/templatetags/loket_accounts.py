"""Template helpers of the sign-in and 2FA pages."""

from __future__ import annotations

from django import template

from loket.accounts.invitations import ROLE_LABELS
from loket.accounts.notices import deadline_text
from loket.accounts.policy import two_factor_status

register = template.Library()


@register.simple_tag(takes_context=True)
def two_factor_requirement(context) -> dict | None:
    """Why the signed-in user is asked to set up 2FA: the strictest workspace requiring it, its
    deadline and whether it has passed; None when no workspace requires it (or it is set up)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    status = getattr(request, "_loket_two_factor_status", None)
    if status is None:  # asked by the layout and by the page: one query per request
        status = request._loket_two_factor_status = two_factor_status(user)
    if not status.required or status.enrolled:
        return None
    requirement = status.requirements[0]
    return {
        "workspace": requirement.workspace_name,
        "deadline": deadline_text(requirement),
        "forced": status.must_enrol(),
    }


@register.filter
def role_label(role: str) -> str:
    """A role's name in the current language (the model's choices are not translated)."""
    return ROLE_LABELS.get(role, role)

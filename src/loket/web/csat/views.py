"""The public page where a customer rates a resolved conversation (the link in a CSAT
survey): 1-5 as radio buttons and an optional comment, in the conversation's language. No
login: the signed token in the link is the permission. No JavaScript; a strict CSP."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loket.inbox.models import Conversation, SatisfactionRating
from loket.inbox.services import satisfaction
from loket.reports import csat

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;color:#1c1c1c;background:#f6f6f4;margin:0}
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}
h1{font-size:1.4rem;margin-top:0}
fieldset{border:0;padding:0;margin:0 0 1rem}
legend{font-weight:600;margin-bottom:.5rem}
.scores{display:flex;flex-wrap:wrap;gap:.5rem}
.scores label{display:flex;align-items:center;gap:.35rem;padding:.5rem .75rem;
border:1px solid #767676;border-radius:6px;cursor:pointer;min-height:24px}
input[type=radio]:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
label.comment{display:block;font-weight:600;margin-bottom:.25rem}
textarea{width:100%;box-sizing:border-box;min-height:6rem;font:inherit;padding:.5rem;
border:1px solid #767676;border-radius:6px}
button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#1a5fb4;
color:#fff;cursor:pointer;margin-top:1rem}
.error{color:#a51d2d;font-weight:600}
.done{color:#26662b;font-weight:600}
""".strip()
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _secure(response: HttpResponse, language: str) -> HttpResponse:
    response["Content-Security-Policy"] = CSP
    response["Referrer-Policy"] = "no-referrer"  # the link carries the token
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["Content-Language"] = language
    return response


def _page(request, context: dict, *, status: int, language: str) -> HttpResponse:
    return _secure(
        render(request, "web/csat/rate.html", {"style": STYLE, **context}, status=status),
        language,
    )


def _score(value) -> int | None:
    try:
        score = int(str(value or ""))
    except ValueError:
        return None
    return score if 1 <= score <= 5 else None


@require_http_methods(["GET", "POST"])
def rate(request, token: str):
    try:
        conversation_id = csat.read_token(token)
        conversation = (
            Conversation.objects.select_related("channel", "workspace")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None:
            raise csat.BadToken
    except csat.ExpiredToken:
        language = translation.get_language_from_request(request)
        with translation.override(language):
            return _page(
                request,
                {"gone": _("This link has expired. Thank you for wanting to tell us!")},
                status=410,
                language=language,
            )
    except csat.BadToken:
        language = translation.get_language_from_request(request)
        with translation.override(language):
            return _page(
                request,
                {"gone": _("This link is not valid. Check that it was copied in full.")},
                status=404,
                language=language,
            )

    language = csat.language_of(conversation)
    with translation.override(language):
        given = SatisfactionRating.objects.filter(conversation=conversation).first()
        error, saved, status = "", False, 200
        selected = _score(request.GET.get("rating")) or (given.rating if given else None)
        comment = given.comment if given else ""
        if request.method == "POST":
            selected = _score(request.POST.get("rating"))
            comment = (request.POST.get("comment") or "")[:2000]
            try:
                if selected is None:
                    raise satisfaction.RatingRefused(_("Choose a rating from 1 to 5."))
                given = satisfaction.rate(
                    conversation, selected, comment, source=conversation.channel.kind
                )
            except satisfaction.RatingRefused as exc:
                error, status = str(exc), 400
            else:
                saved = True
        changeable_until = None
        if given is not None:
            changeable_until = given.created_at + dt.timedelta(
                hours=settings.LOKET_CSAT_CHANGE_HOURS
            )
        return _page(
            request,
            {
                "workspace_name": conversation.workspace.name,
                "scores": [
                    {"value": score, "label": label, "checked": score == selected}
                    for score, label in csat.SCORES
                ],
                "comment": comment,
                "given": given,
                "saved": saved,
                "error": error,
                "changeable_until": changeable_until,
                "language": language,
            },
            status=status,
            language=language,
        )

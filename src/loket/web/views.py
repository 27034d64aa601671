from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render

from loket.inbox.models import Conversation, ConversationStatus
from loket.tenancy.models import Membership

logger = logging.getLogger(__name__)


def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # The error names the database host, user and database: log it, never return it to
        # the (unauthenticated) caller.
        logger.warning("healthz: database unavailable: %s", exc)
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def home(request):
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("workspace").order_by("pk")
    )
    open_counts = dict(
        Conversation.objects.filter(
            workspace_id__in=[m.workspace_id for m in memberships],
            status=ConversationStatus.OPEN,
        )
        .values_list("workspace_id")
        .annotate(count=Count("pk"))
    )  # one query for every workspace, not one per workspace
    if len(memberships) == 1:
        return redirect("inbox:index", memberships[0].workspace.slug)
    rows = [{"membership": m, "open": open_counts.get(m.workspace_id, 0)} for m in memberships]
    return render(request, "web/home.html", {"rows": rows})

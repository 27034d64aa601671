from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render

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
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    rows = []
    for membership in memberships:
        open_count = Conversation.objects.filter(
            workspace_id=membership.workspace_id, status=ConversationStatus.OPEN
        ).count()
        rows.append({"membership": membership, "open": open_count})
    return render(request, "web/home.html", {"rows": rows})

"""The conversation header's "Macros" menu: the macros the member may run (loaded when the menu
opens) and running one, which re-renders the header and says what was done or what failed."""

from __future__ import annotations

import json

from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from loket.automation import macros
from loket.web.inbox.views import _conversation, _head_response, _toast
from loket.web.workspace import workspace_view


@require_GET
@workspace_view
def menu(request, number: int):
    conversation = _conversation(request, number)
    return render(
        request,
        "web/inbox/_macros.html",
        {
            "conversation": conversation,
            "macros": list(macros.visible(request.membership)),
            "macro_menu": True,
        },
    )


@require_POST
@workspace_view
def run(request, number: int, macro_id: int):
    """Run the macro as the member; another workspace's or member's macro is a 404."""
    conversation = _conversation(request, number)
    macro = macros.get_visible(request.membership, macro_id)
    ran = macros.run_macro(macro, conversation, actor=request.membership)
    response = _head_response(request, number)
    # The toast says what was done; a resync brings the timeline up to date even when nothing
    # changed that would announce itself (every action failed: only the macro's line is new).
    response.headers["HX-Trigger"] = json.dumps(
        {**json.loads(_toast(ran.summary)), "loket:resync": True}
    )
    return response

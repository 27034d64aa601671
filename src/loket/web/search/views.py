"""The search page: one box over contacts and message text (loket.inbox.search).

A plain GET form that works without JavaScript; with htmx the results update while typing (the
request carries ``HX-Request`` and gets only the results), and "More results" appends the next
page in place.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loket.inbox.search import search
from loket.inbox.selectors import BadCursor
from loket.web.workspace import workspace_view

PAGE = 20


@workspace_view
@require_http_methods(["GET", "HEAD"])
def index(request):
    query = request.GET.get("q", "")
    cursor = request.GET.get("cursor") or None
    try:
        results = search(request.membership, query, limit=PAGE, cursor=cursor)
    except BadCursor:
        return HttpResponseBadRequest(_("This results page is no longer available."))
    context = {"q": query, "results": results, "more": cursor is not None}
    if request.headers.get("HX-Request"):
        # While typing: the results; "More results": the next rows only.
        template = "web/search/_hits.html" if cursor else "web/search/_results.html"
        return render(request, template, context)
    return render(request, "web/search/index.html", context)

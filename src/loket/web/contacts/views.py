"""The contacts pages: list, detail, edit, merge (and undo), block, suggested duplicates.

Every page is for any member of the workspace; every id is looked up within it (another
workspace's id is a 404). Writes go through loket.inbox.services.contacts.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from loket.inbox import selectors
from loket.inbox.services import contacts as contact_services
from loket.inbox.services.conversations import InvalidChange
from loket.web.contacts import reads
from loket.web.contacts.forms import ContactForm, MergeForm
from loket.web.workspace import workspace_view


def _detail(request, contact, *, merged=None) -> HttpResponse:
    response = redirect("contacts:detail", request.workspace.slug, contact.pk)
    if merged is not None:  # the page then offers to undo it, right at the top
        response["Location"] += "?" + urlencode({"merged": merged.pk})
    return response


def _just_merged(request, merges) -> object | None:
    """The merge named by ``?merged=`` when it is among ``merges`` and still undoable."""
    wanted = request.GET.get("merged", "")
    return next((m for m in merges if str(m.pk) == wanted and m.undone_at is None), None)


@workspace_view
@require_http_methods(["GET", "HEAD"])
def index(request):
    filters = reads.ContactFilters.from_query(request.GET)
    cursor = request.GET.get("cursor") or None
    try:
        page = reads.contact_page(request.membership, filters, cursor)
    except selectors.BadCursor:
        page = reads.contact_page(request.membership, filters, None)
    query = {
        key: value
        for key, value in {
            "q": filters.search,
            "attribute": filters.attribute,
            "value": filters.value,
            "blocked": "1" if filters.blocked else "",
            "sort": filters.sort,
        }.items()
        if value
    }
    context = {
        "filters": filters,
        "sorts": reads.SORTS,
        "page": page,
        "next_query": urlencode({**query, "cursor": page.next_cursor}) if page.next_cursor else "",
    }
    if request.headers.get("HX-Request") and cursor:  # "more" appends rows to the table
        return render(request, "web/contacts/_rows.html", context)
    return render(request, "web/contacts/index.html", context)


@workspace_view
@require_http_methods(["GET", "HEAD"])
def detail(request, pk: int):
    contact = reads.contact(request.membership, pk)
    conversations = reads.conversations_of(request.membership, contact)
    merges = reads.merges_of(request.membership, contact)
    return render(
        request,
        "web/contacts/detail.html",
        {
            "contact": contact,
            "conversations": conversations[: reads.CONVERSATIONS_SHOWN],
            "more_conversations": len(conversations) > reads.CONVERSATIONS_SHOWN,
            "merges": merges,
            "just_merged": _just_merged(request, merges),
        },
    )


@workspace_view
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request, pk: int):
    contact = reads.contact(request.membership, pk)
    if contact.merged_into_id is not None:
        messages.error(request, _("A merged contact cannot be edited; edit the one it is part of."))
        return _detail(request, contact)
    form = ContactForm(request.POST or None, contact=contact)
    if request.method == "POST" and form.is_valid():
        try:
            contact_services.update_contact(contact, actor=request.membership, **form.cleaned_data)
        except InvalidChange as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Contact saved."))
            return _detail(request, contact)
    return render(request, "web/contacts/edit.html", {"contact": contact, "form": form})


def _merge_refusal(source, target) -> str | None:
    """Why these two cannot be merged, in the member's language; None if they can."""
    if source.pk == target.pk:
        return _("A contact cannot be merged with itself.")
    if source.merged_into_id is not None:
        return _("%(name)s was already merged into another contact.") % {"name": source}
    if target.merged_into_id is not None:
        return _("%(name)s was merged into another contact.") % {"name": target}
    return None


@workspace_view
@require_http_methods(["GET", "HEAD", "POST"])
def merge(request, pk: int):
    """GET: pick the contact to merge into this one (by search). POST: merge it."""
    target = reads.contact(request.membership, pk)
    if request.method == "POST":
        form = MergeForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Pick the contact to merge."))
            return redirect("contacts:merge", request.workspace.slug, target.pk)
        source = reads.contact(request.membership, form.cleaned_data["source"])
        refusal = _merge_refusal(source, target)
        merged = None
        if refusal is None:
            try:
                merged = contact_services.merge_contacts(source, target, actor=request.membership)
            except InvalidChange as exc:
                refusal = str(exc)
        if refusal is not None:
            messages.error(request, refusal)
        if form.cleaned_data["back_to"] == "duplicates":
            response = redirect("contacts:duplicates", request.workspace.slug)
            if merged is not None:
                response["Location"] += "?" + urlencode({"merged": merged.pk})
            return response
        return _detail(request, target, merged=merged)

    search = request.GET.get("q", "").strip()[:200]
    return render(
        request,
        "web/contacts/merge.html",
        {
            "contact": target,
            "search": search,
            "candidates": reads.merge_candidates(request.membership, target, search),
        },
    )


@workspace_view
@require_POST
def undo_merge(request, merge_id: int):
    merge = reads.merge(request.membership, merge_id)
    if merge.undone_at is not None:
        messages.error(request, _("This merge was already undone."))
    elif merge.target.merged_into_id is not None:
        messages.error(
            request,
            _("%(name)s was merged into another contact since; undo that merge first.")
            % {"name": merge.target},
        )
    else:
        try:
            contact_services.undo_contact_merge(merge, actor=request.membership)
        except InvalidChange as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("%(source)s is a separate contact again.") % {"source": merge.source},
            )
            return _detail(request, merge.source)
    return _detail(request, merge.target)


@workspace_view
@require_POST
def block(request, pk: int):
    contact = reads.contact(request.membership, pk)
    if request.POST.get("blocked") == "1":
        contact_services.block_contact(contact, actor=request.membership)
        messages.success(
            request,
            _("%(name)s is blocked: their messages are kept, marked, and notify nobody.")
            % {"name": contact},
        )
    else:
        contact_services.unblock_contact(contact, actor=request.membership)
        messages.success(request, _("%(name)s is no longer blocked.") % {"name": contact})
    return _detail(request, contact)


@workspace_view
@require_POST
def remote_images(request, pk: int):
    """Load (or stop loading) remote images in this contact's emails without asking."""
    contact = reads.contact(request.membership, pk)
    allowed = request.POST.get("allowed") == "1"
    contact_services.set_remote_images(contact, allowed, actor=request.membership)
    if allowed:
        messages.success(request, _("Images in mail from %(name)s now load.") % {"name": contact})
    else:
        messages.success(
            request, _("Images in mail from %(name)s are blocked again.") % {"name": contact}
        )
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return _detail(request, contact)


@workspace_view
@require_http_methods(["GET", "HEAD"])
def duplicates(request):
    pairs = contact_services.suggested_duplicates(request.workspace.pk)
    just_merged = None
    if request.GET.get("merged", "").isdigit():
        try:
            merges = [reads.merge(request.membership, int(request.GET["merged"]))]
        except Http404:
            merges = []
        just_merged = _just_merged(request, merges)
    return render(
        request, "web/contacts/duplicates.html", {"pairs": pairs, "just_merged": just_merged}
    )

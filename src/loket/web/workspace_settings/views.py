"""Settings pages for a workspace's owners and admins: ``/w/<slug>/settings/…``.

Every view is admin-only (except the canned replies pages, where every member manages their
personal replies); rows are looked up within the current workspace (another
workspace's id is a 404). Forms post and redirect, except where a secret is shown once: that
answer is rendered straight away and never cached, so the secret is stored nowhere.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from loket.automation import canned
from loket.automation.assignment import configure_team, set_capacities, set_working_hours
from loket.connectors.base import InvalidConfig
from loket.connectors.registry import REGISTRY, get_connector, webhook_url
from loket.inbox.models import MessageTemplate
from loket.inbox.services import templates as templates_service
from loket.inbox.services.channels import (
    create_channel,
    reconfigure_channel,
    set_channel_active,
    update_channel,
)
from loket.inbox.services.labels import InvalidLabel, create_label, delete_label, update_label
from loket.tenancy import hours
from loket.tenancy.models import Role
from loket.tenancy.services import (
    ADMIN_ROLES,
    NotAllowed,
    change_member,
    create_api_token,
    create_team,
    delete_team,
    remove_member,
    revoke_api_token,
    update_team,
    update_workspace_profile,
)
from loket.web import working_hours
from loket.web.csat import forms as csat_fields
from loket.web.workspace import workspace_view
from loket.web.workspace_settings import queries
from loket.web.workspace_settings.forms import (
    AVAILABILITY_LABELS,
    ROLE_LABELS,
    ApiChannelForm,
    CannedReplyForm,
    ChannelForm,
    ConnectorChannelForm,
    EmailChannelForm,
    LabelForm,
    LiveChatChannelForm,
    MemberForm,
    TeamForm,
    TokenForm,
    WorkspaceProfileForm,
)

TEMPLATES = "web/workspace_settings/"


def _render(request, template: str, context: dict, status: int = 200):
    return render(request, TEMPLATES + template, context, status=status)


def _form_errors(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


# -- Workspace profile (the landing page) -----------------------------------------------------
@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def index(request):
    workspace = request.workspace
    form = WorkspaceProfileForm.for_workspace(
        workspace, request.POST if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        update_workspace_profile(workspace, **form.cleaned_data)
        messages.success(request, _("Workspace settings saved."))
        return redirect("wsettings:index", workspace.slug)
    deadline = None
    if workspace.require_2fa and workspace.require_2fa_since:
        deadline = workspace.require_2fa_since + timedelta(days=workspace.two_factor_grace_days)
    return _render(
        request,
        "profile.html",
        {
            "form": form,
            "without_two_factor": queries.members_without_two_factor(workspace),
            "two_factor_deadline": deadline,
        },
        status=400 if form.is_bound else 200,
    )


# -- Members and roles ------------------------------------------------------------------------
@workspace_view(admin=True)
def members(request):
    actor = request.membership
    is_owner = actor.role == Role.OWNER
    assignable_roles = [
        (value, label)
        for value, label in ROLE_LABELS.items()
        if is_owner or value not in ADMIN_ROLES
    ]
    rows = [
        {
            "member": member,
            "role_label": ROLE_LABELS.get(member.role, member.role),
            "availability_label": AVAILABILITY_LABELS.get(member.availability, member.availability),
            # Roles of owners and admins are an owner's business; an admin may still set their
            # capacity.
            "may_change_role": is_owner or member.role not in ADMIN_ROLES,
            "may_remove": member.pk == actor.pk or is_owner or member.role not in ADMIN_ROLES,
            "working_hours": working_hours.summary(member.working_hours),
        }
        for member in queries.members(request.workspace)
    ]
    return _render(
        request,
        "members.html",
        {
            "rows": rows,
            "assignable_roles": assignable_roles,
            "max_capacity": MemberForm.base_fields["capacity"].max_value,
        },
    )


@workspace_view(admin=True)
@require_POST
def member_update(request, member_id: int):
    member = queries.member(request.workspace, member_id)
    form = MemberForm(request.POST)
    name = member.display_name
    if not form.is_valid():
        messages.error(
            request,
            _("%(name)s was not changed: %(errors)s")
            % {"name": name, "errors": _form_errors(form)},
        )
        return redirect("wsettings:members", request.workspace.slug)
    capacities = form.pop_capacities()
    try:
        change_member(member, actor=request.membership, **form.cleaned_data)
        if capacities is not None:
            set_capacities(member, capacities, actor=request.membership)
    except NotAllowed as exc:
        messages.error(
            request, _("%(name)s was not changed: %(reason)s") % {"name": name, "reason": exc}
        )
    else:
        messages.success(request, _("%(name)s was updated.") % {"name": name})
    return redirect("wsettings:members", request.workspace.slug)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def member_hours(request, member_id: int):
    """A member's working hours: when the auto-assigner may give them conversations."""
    member = queries.member(request.workspace, member_id)
    form = working_hours.WorkingHoursForm.for_member(
        member, request.POST if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        try:
            set_working_hours(member, form.value(), actor=request.membership)
        except (NotAllowed, hours.InvalidHours) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Working hours of %(name)s saved.") % {"name": member.display_name},
            )
            return redirect("wsettings:members", request.workspace.slug)
    return _render(
        request,
        "member_hours.html",
        {"member": member, "form": form},
        status=400 if form.is_bound else 200,
    )


@workspace_view(admin=True)
@require_POST
def member_remove(request, member_id: int):
    member = queries.member(request.workspace, member_id)
    name = member.display_name
    leaving = member.pk == request.membership.pk
    try:
        remove_member(member, actor=request.membership)
    except NotAllowed as exc:
        messages.error(
            request, _("%(name)s was not removed: %(reason)s") % {"name": name, "reason": exc}
        )
        return redirect("wsettings:members", request.workspace.slug)
    if leaving:
        messages.success(request, _("You left %(workspace)s.") % {"workspace": request.workspace})
        return redirect("home")
    messages.success(
        request,
        _("%(name)s was removed; their open conversations are unassigned.") % {"name": name},
    )
    return redirect("wsettings:members", request.workspace.slug)


# -- Teams ------------------------------------------------------------------------------------
@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def teams(request):
    workspace = request.workspace
    form = TeamForm(workspace, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        team = create_team(workspace, form.cleaned_data["name"], list(form.cleaned_data["members"]))
        _configure_assignment(team, form)
        messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
        return redirect("wsettings:teams", workspace.slug)
    return _render(
        request,
        "teams.html",
        {"teams": queries.teams(workspace), "form": form},
        status=400 if form.is_bound else 200,
    )


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def team_edit(request, team_id: int):
    workspace = request.workspace
    team = queries.team(workspace, team_id)
    if request.method == "POST":
        form = TeamForm(workspace, request.POST, team=team)
        if form.is_valid():
            update_team(team, name=form.cleaned_data["name"], members=form.cleaned_data["members"])
            _configure_assignment(team, form)
            messages.success(request, _("Team “%(name)s” saved.") % {"name": team.name})
            return redirect("wsettings:teams", workspace.slug)
    else:
        form = TeamForm(
            workspace,
            team=team,
            initial={
                "name": team.name,
                "members": team.members.all(),
                "auto_assign": team.auto_assign,
                "reassign_when_offline": team.reassign_when_offline,
            },
        )
    return _render(
        request,
        "team_edit.html",
        {"team": team, "form": form},
        status=400 if form.is_bound else 200,
    )


def _configure_assignment(team, form) -> None:
    # A post without the mode (an older form, a script) leaves the team's assignment as it is.
    if form.cleaned_data.get("auto_assign"):
        configure_team(
            team,
            auto_assign=form.cleaned_data["auto_assign"],
            reassign_when_offline=form.cleaned_data["reassign_when_offline"],
        )


@workspace_view(admin=True)
@require_POST
def team_delete(request, team_id: int):
    team = queries.team(request.workspace, team_id)
    delete_team(team)
    messages.success(request, _("Team “%(name)s” deleted.") % {"name": team.name})
    return redirect("wsettings:teams", request.workspace.slug)


# -- Labels -----------------------------------------------------------------------------------
def _labels_page(request, *, new_form=None, failed=None, failed_form=None, status=200):
    rows = [
        {
            "label": label,
            "form": failed_form
            if failed is not None and label.pk == failed.pk
            else LabelForm(
                prefix=f"label-{label.pk}", initial={"name": label.name, "color": label.color}
            ),
        }
        for label in queries.labels(request.workspace)
    ]
    return _render(
        request, "labels.html", {"rows": rows, "form": new_form or LabelForm()}, status=status
    )


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def labels(request):
    if request.method != "POST":
        return _labels_page(request)
    form = LabelForm(request.POST)
    if form.is_valid():
        try:
            label = create_label(request.workspace, **form.cleaned_data)
        except InvalidLabel as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, _("Label “%(name)s” created.") % {"name": label.name})
            return redirect("wsettings:labels", request.workspace.slug)
    return _labels_page(request, new_form=form, status=400)


@workspace_view(admin=True)
@require_POST
def label_update(request, label_id: int):
    label = queries.label(request.workspace, label_id)
    form = LabelForm(request.POST, prefix=f"label-{label.pk}")
    if form.is_valid():
        try:
            update_label(label, **form.cleaned_data)
        except InvalidLabel as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, _("Label “%(name)s” saved.") % {"name": label.name})
            return redirect("wsettings:labels", request.workspace.slug)
    return _labels_page(request, failed=label, failed_form=form, status=400)


@workspace_view(admin=True)
@require_POST
def label_delete(request, label_id: int):
    label = queries.label(request.workspace, label_id)
    name = label.name
    delete_label(label, actor=request.membership)
    messages.success(request, _("Label “%(name)s” deleted.") % {"name": name})
    return redirect("wsettings:labels", request.workspace.slug)


# -- Channels ---------------------------------------------------------------------------------
def _channel_rows(workspace) -> list[dict]:
    rows = []
    for channel in queries.channels(workspace):
        connector = REGISTRY.get(channel.kind)
        rows.append(
            {
                "channel": channel,
                "kind_label": connector.label if connector else channel.kind,
                "webhook_url": webhook_url(channel),
            }
        )
    return rows


def _new_channel_forms(request):
    """The "add channel" forms, one per kind that has one; the posted one bound."""
    workspace = request.workspace
    posted = request.POST.get("kind", "api") if request.method == "POST" else None
    data = request.POST if posted else None
    forms = {
        "api": ApiChannelForm(workspace, data if posted == "api" else None),
        "email": EmailChannelForm(workspace, data if posted == "email" else None),
        "livechat": LiveChatChannelForm(workspace, data if posted == "livechat" else None),
    }
    for kind, connector in REGISTRY.items():
        if connector.setup_fields:
            forms[kind] = ConnectorChannelForm(
                workspace, connector, data if posted == kind else None, prefix=kind
            )
    return forms, posted


def _create(request, kind: str, form) -> tuple[object | None, dict]:
    config = {"outbound_url": form.cleaned_data["outbound_url"]} if kind == "api" else form.config()
    try:
        return create_channel(
            request.workspace,
            get_connector(kind),
            name=form.cleaned_data["name"],
            config=config,
            default_team=form.cleaned_data["default_team"],
        )
    except InvalidConfig as exc:
        form.add_error(None, str(exc))
        return None, {}


@never_cache
@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def channels(request):
    workspace = request.workspace
    forms, posted = _new_channel_forms(request)
    form = forms.get(posted)
    if form is not None and form.is_valid():
        channel, shown_once = _create(request, posted, form)
        if channel is not None and isinstance(form, ConnectorChannelForm):
            return _render(
                request,
                "channel_created.html",
                {
                    "channel": channel,
                    "webhook_url": webhook_url(channel) if form.connector.shows_webhook_url else "",
                    "shown": [
                        (_setup_label(form.connector, key), value)
                        for key, value in shown_once.items()
                    ],
                    "connector_created": True,
                },
            )
        if channel is not None and posted in ("api", "livechat"):
            # Rendered, not redirected: the secret is shown this once and kept nowhere.
            return _render(
                request,
                "channel_created.html",
                {
                    "channel": channel,
                    "webhook_url": webhook_url(channel) if posted == "api" else "",
                    "snippet": _snippet(channel) if posted == "livechat" else "",
                    "secret": shown_once.get("secret", ""),
                },
            )
        if channel is not None:
            messages.success(
                request,
                _("Channel “%(name)s” created. Test its connection below.")
                % {"name": channel.name},
            )
            return redirect("wsettings:channel-edit", workspace.slug, channel.pk)
    return _render(
        request,
        "channels.html",
        {
            "rows": _channel_rows(workspace),
            "form": forms["api"],
            "email_form": forms["email"],
            "livechat_form": forms["livechat"],
            "connector_forms": [
                (REGISTRY[kind], f)
                for kind, f in forms.items()
                if isinstance(f, ConnectorChannelForm)
            ],
        },
        status=400 if posted else 200,
    )


def _setup_label(connector, key: str) -> str:
    return next((str(f.label) for f in connector.setup_fields if f.name == key), key)


def _save_team_photos(request, channel, form) -> None:
    """Uploaded team photos (or their removal) for a live-chat channel."""
    from loket.connectors.livechat import photos

    uploads = [upload.read() for upload in request.FILES.getlist("team_photos")]
    clear = form.cleaned_data.get("clear_team_photos")
    if not uploads and not clear:
        return
    channel.settings = {
        **channel.settings,
        "team_photos": photos.replace(channel, uploads, clear=bool(clear)),
    }
    channel.save(update_fields=["settings"])


def _snippet(channel) -> str:
    """The one line a website adds to show this live chat."""
    return f'<script src="{settings.LOKET_PUBLIC_URL}/widget/{channel.uuid}.js" async></script>'


def _edit_form(request, channel):
    form = _connector_form(request, channel)
    csat_fields.add_fields(form, channel)  # the satisfaction survey (not on the live chat)
    return form


def _connector_form(request, channel):
    workspace = request.workspace
    data = request.POST if request.method == "POST" else None
    files = request.FILES if request.method == "POST" else None
    initial = {"name": channel.name, "default_team": channel.default_team_id}
    if channel.kind == "email":
        return EmailChannelForm(workspace, data, initial=initial, initial_config=channel.settings)
    if channel.kind == "livechat":
        return LiveChatChannelForm(
            workspace, data, files, initial=initial, initial_config=channel.settings
        )
    connector = REGISTRY.get(channel.kind)
    if connector is not None and connector.setup_fields:
        return ConnectorChannelForm(
            workspace, connector, data, initial=initial, initial_config=channel.settings
        )
    return ChannelForm(workspace, data, initial=initial)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def channel_edit(request, channel_id: int):
    workspace = request.workspace
    channel = queries.channel(workspace, channel_id)
    form = _edit_form(request, channel)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                update_channel(
                    channel,
                    name=form.cleaned_data["name"],
                    default_team=form.cleaned_data["default_team"],
                )
                if isinstance(form, EmailChannelForm | LiveChatChannelForm | ConnectorChannelForm):
                    reconfigure_channel(channel, get_connector(channel.kind), form.config())
                if isinstance(form, LiveChatChannelForm):
                    _save_team_photos(request, channel, form)
                csat_fields.save(form, channel)
        except (InvalidConfig, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Channel “%(name)s” saved.") % {"name": channel.name})
            return redirect("wsettings:channel-edit", workspace.slug, channel.pk)
    connector = REGISTRY.get(channel.kind)
    return _render(
        request,
        "channel_edit.html",
        {
            "channel": channel,
            "form": form,
            "kind_label": connector.label if connector else channel.kind,
            "webhook_url": webhook_url(channel)
            if channel.kind == "api"
            or channel.settings.get("inbound") == "esp"
            or (connector is not None and connector.shows_webhook_url)
            else "",
            "templates": _templates(channel, connector),
            "snippet": _snippet(channel) if channel.kind == "livechat" else "",
            "public": connector.public_settings(channel) if connector else {},
            "mailbox": queries.mailbox(channel),
        },
        status=400 if form.is_bound else 200,
    )


@workspace_view(admin=True)
@require_POST
def channel_check(request, channel_id: int):
    channel = queries.channel(request.workspace, channel_id)
    try:
        get_connector(channel.kind).check_connection(channel)
    except InvalidConfig as exc:
        messages.error(request, _("The connection test failed: %(error)s") % {"error": exc})
    else:
        messages.success(request, _("The connection works."))
    return redirect("wsettings:channel-edit", request.workspace.slug, channel.pk)


def _templates(channel, connector):
    """The channel's message templates, for channels that have them (else None)."""
    if connector is None or not connector.capabilities.templates:
        return None
    return list(MessageTemplate.objects.filter(workspace_id=channel.workspace_id, channel=channel))


@workspace_view(admin=True)
@require_POST
def channel_templates_sync(request, channel_id: int):
    channel = queries.channel(request.workspace, channel_id)
    try:
        count = templates_service.sync(channel)
    except InvalidConfig as exc:
        messages.error(request, _("Syncing the templates failed: %(error)s") % {"error": exc})
    else:
        messages.success(
            request,
            ngettext("%(count)d template synced.", "%(count)d templates synced.", count)
            % {"count": count},
        )
    return redirect("wsettings:channel-edit", request.workspace.slug, channel.pk)


@workspace_view(admin=True)
@require_POST
def channel_active(request, channel_id: int):
    channel = queries.channel(request.workspace, channel_id)
    active = request.POST.get("active") == "1"
    set_channel_active(channel, active)
    if active:
        messages.success(request, _("Channel “%(name)s” is active.") % {"name": channel.name})
    else:
        messages.success(
            request,
            _("Channel “%(name)s” is inactive: it no longer accepts messages.")
            % {"name": channel.name},
        )
    return redirect("wsettings:channels", request.workspace.slug)


# -- API tokens (the current member's own) ----------------------------------------------------
@never_cache
@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def tokens(request):
    membership = request.membership
    form = TokenForm(request.POST if request.method == "POST" else None)
    raw_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _token, raw_token = create_api_token(membership, name=form.cleaned_data["name"])
            # Rendered, not redirected: the raw token is shown this once and kept nowhere.
            form = TokenForm()
        else:
            status = 400
    return _render(
        request,
        "tokens.html",
        {"tokens": queries.own_tokens(membership), "form": form, "raw_token": raw_token},
        status=status,
    )


@workspace_view(admin=True)
@require_POST
def token_revoke(request, token_id: int):
    token = queries.own_token(request.membership, token_id)
    revoke_api_token(token)
    messages.success(request, _("Token %(prefix)s… revoked.") % {"prefix": token.prefix})
    return redirect("wsettings:tokens", request.workspace.slug)


# -- Canned replies (every member: the shared ones, and their own personal ones) -------------
CANNED_LANGUAGES = ("en", "nl", "de", "fr", "es", "it", "pt")


def _canned_page(request, *, form=None, status=200):
    member = request.membership
    query = request.GET.get("q", "").strip()
    rows = [
        {"reply": reply, "may_manage": canned.may_manage(member, reply)}
        for reply in canned.visible(member, query=query)
    ]
    return _render(
        request,
        "canned_replies.html",
        {
            "rows": rows,
            "query": query,
            "form": form or CannedReplyForm(may_share=member.is_admin),
            "layout": _canned_layout(member),
            "languages": CANNED_LANGUAGES,
        },
        status=status,
    )


def _canned_layout(member) -> str:
    """Admins see the page among the other settings; other members, whose only settings page
    this is, without the admin pages' navigation."""
    if member.is_admin:
        return TEMPLATES + "base.html"
    return TEMPLATES + "member_base.html"


def _canned_form_error(form, exc: canned.InvalidCannedReply) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


@workspace_view
@require_http_methods(["GET", "POST"])
def canned_replies(request):
    member = request.membership
    if request.method != "POST":
        return _canned_page(request)
    form = CannedReplyForm(request.POST, may_share=member.is_admin)
    if form.is_valid():
        try:
            reply = canned.create_canned_reply(member, **form.cleaned_data)
        except canned.InvalidCannedReply as exc:
            _canned_form_error(form, exc)
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        else:
            messages.success(
                request, _("Canned reply /%(shortcut)s created.") % {"shortcut": reply.shortcut}
            )
            return redirect("wsettings:canned-replies", request.workspace.slug)
    return _canned_page(request, form=form, status=400)


def _manageable_reply(request, reply_id: int):
    """The reply when the member may change it: 404 when they may not even see it, 403 when
    they see it but it is not theirs to change (a shared one, for a non-admin)."""
    reply = canned.get_visible(request.membership, reply_id)
    if not canned.may_manage(request.membership, reply):
        raise PermissionDenied(_("Only owners and admins can manage shared canned replies."))
    return reply


@workspace_view
@require_http_methods(["GET", "POST"])
def canned_reply_edit(request, reply_id: int):
    member = request.membership
    reply = _manageable_reply(request, reply_id)
    if request.method == "POST":
        form = CannedReplyForm(request.POST, may_share=member.is_admin)
        if form.is_valid():
            try:
                canned.update_canned_reply(reply, actor=member, **form.cleaned_data)
            except canned.InvalidCannedReply as exc:
                _canned_form_error(form, exc)
            except NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            else:
                messages.success(
                    request,
                    _("Canned reply /%(shortcut)s saved.") % {"shortcut": reply.shortcut},
                )
                return redirect("wsettings:canned-replies", request.workspace.slug)
    else:
        form = CannedReplyForm(
            may_share=member.is_admin,
            initial={
                "shortcut": reply.shortcut,
                "title": reply.title,
                "language": reply.language,
                "body": reply.body,
                "shared": reply.is_shared,
            },
        )
    return _render(
        request,
        "canned_reply_edit.html",
        {
            "reply": reply,
            "form": form,
            "layout": _canned_layout(member),
            "languages": CANNED_LANGUAGES,
        },
        status=400 if form.is_bound else 200,
    )


@workspace_view
@require_POST
def canned_reply_delete(request, reply_id: int):
    reply = _manageable_reply(request, reply_id)
    shortcut = reply.shortcut
    canned.delete_canned_reply(reply, actor=request.membership)
    messages.success(request, _("Canned reply /%(shortcut)s deleted.") % {"shortcut": shortcut})
    return redirect("wsettings:canned-replies", request.workspace.slug)

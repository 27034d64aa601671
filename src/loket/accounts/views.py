"""Invitations: the admins' management page and the invitee's link."""

from __future__ import annotations

from allauth.account.internal.flows.login import perform_password_login
from allauth.account.models import Login
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from loket.accounts import invitations as invitation_services
from loket.accounts import selectors
from loket.accounts.forms import InvitationForm, JoinForm
from loket.accounts.invitations import (
    InvitationError,
    InvitationNotSent,
    InvitationState,
    invitation_state,
)
from loket.tenancy.models import User
from loket.web.workspace import workspace_view

# --- The management page (admins of the workspace) ---------------------------------------------


@workspace_view(admin=True)
def invitation_list(request):
    inviter = request.membership
    form = InvitationForm(request.POST or None, inviter=inviter)
    if request.method == "POST" and form.is_valid():
        try:
            invitation_services.create_invitation(
                request.workspace,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                teams=form.cleaned_data.get("teams", ()),
                invited_by=inviter,
            )
        except InvitationNotSent as exc:
            messages.error(request, str(exc))
            return redirect("invitations:list", request.workspace.slug)
        except InvitationError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(
                request,
                gettext("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]},
            )
            return redirect("invitations:list", request.workspace.slug)
    past = selectors.past_invitations(request.workspace)
    for invitation in past:
        invitation.state = invitation_state(invitation)
    context = {
        "form": form,
        "pending": selectors.pending_invitations(request.workspace),
        "past": past,
        "invitation_days": settings.LOKET_INVITATION_DAYS,
    }
    return render(
        request, "accounts/invitations/list.html", context, status=400 if form.errors else 200
    )


def _invitation_or_404(request, pk: int):
    invitation = selectors.invitation_in(request.workspace, pk)
    if invitation is None:
        raise Http404("no such invitation")
    return invitation


@require_POST
@workspace_view(admin=True)
def invitation_resend(request, pk: int):
    invitation = _invitation_or_404(request, pk)
    try:
        invitation_services.resend_invitation(invitation)
    except InvitationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            gettext("A new invitation link was sent to %(email)s.") % {"email": invitation.email},
        )
    return redirect("invitations:list", request.workspace.slug)


@require_POST
@workspace_view(admin=True)
def invitation_revoke(request, pk: int):
    invitation = _invitation_or_404(request, pk)
    try:
        invitation_services.revoke_invitation(invitation)
    except InvitationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            gettext("The invitation for %(email)s was revoked.") % {"email": invitation.email},
        )
    return redirect("invitations:list", request.workspace.slug)


# --- The invitee's link ----------------------------------------------------------------------


def _workspace_home(invitation) -> str:
    return reverse("inbox:index", args=[invitation.workspace.slug])


def accept(request, token: str):
    """One link for everybody: a new person sets a name and password; someone with an account
    signs in (when not yet) and confirms. Used, revoked, expired and unknown links say so."""
    invitation = selectors.invitation_for_token(token)
    if invitation is None:
        return render(
            request, "accounts/invitations/unusable.html", {"reason": "unknown"}, status=404
        )
    state = invitation_state(invitation)
    if state == InvitationState.ACCEPTED and request.user == invitation.accepted_by:
        return redirect(_workspace_home(invitation))
    if state != InvitationState.PENDING:
        return render(
            request,
            "accounts/invitations/unusable.html",
            {"reason": state, "invitation": invitation},
            status=410,
        )
    context = {"invitation": invitation, "workspace": invitation.workspace}
    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            return render(request, "accounts/invitations/wrong_account.html", context, status=403)
        if request.method == "POST":
            try:
                invitation_services.accept_invitation(invitation, request.user)
            except InvitationError as exc:
                messages.error(request, str(exc))
                return redirect(request.path)
            messages.success(
                request,
                gettext("Welcome to %(workspace)s.") % {"workspace": invitation.workspace.name},
            )
            return redirect(_workspace_home(invitation))
        return render(request, "accounts/invitations/confirm.html", context)
    if User.objects.filter(email__iexact=invitation.email).exists():
        return render(request, "accounts/invitations/sign_in.html", context)
    form = JoinForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = invitation_services.register_and_accept(
                invitation, name=form.cleaned_data["name"], password=form.cleaned_data["password1"]
            )
        except InvitationError as exc:
            messages.error(request, str(exc))
            return redirect(request.path)
        messages.success(
            request,
            gettext("Welcome to %(workspace)s.") % {"workspace": invitation.workspace.name},
        )
        # Through allauth's login, like the sign-in form: its login stages run and the session
        # records a password authentication (the 2FA setup then needs no second password).
        user = membership.user
        return perform_password_login(
            request,
            {"email": user.email},
            Login(user=user, redirect_url=_workspace_home(invitation), email=user.email),
        )
    context["form"] = form
    return render(
        request, "accounts/invitations/join.html", context, status=400 if form.errors else 200
    )

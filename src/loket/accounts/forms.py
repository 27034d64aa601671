from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from loket.accounts.invitations import ROLE_LABELS, roles_invitable_by
from loket.tenancy.models import Membership, Role, Team, User


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label=_("Role"))
    teams = forms.ModelMultipleChoiceField(
        label=_("Teams"),
        queryset=Team.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The new member joins these teams when they accept."),
    )

    def __init__(self, *args, inviter: Membership, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [
            (role, ROLE_LABELS[role]) for role in roles_invitable_by(inviter)
        ]
        self.fields["role"].initial = Role.AGENT
        teams = Team.objects.filter(workspace_id=inviter.workspace_id).order_by("name")
        if teams.exists():
            self.fields["teams"].queryset = teams
        else:
            del self.fields["teams"]  # nothing to choose from

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class JoinForm(forms.Form):
    """A new person's account, from an invitation to ``email``."""

    name = forms.CharField(
        label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict:
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords do not match."))
        elif password1:
            # A user that is not saved: the similarity check compares with the name and email.
            candidate = User(email=self.email, name=data.get("name", ""))
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data

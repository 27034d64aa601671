"""Settings → Help center: switch the public help center (``loket.web.helpcenter``) on or off,
its title per language, the languages it offers and the default one, the brand colour, the logo
and an optional custom domain (``knowledge.HelpCenter``, validated by the model's own
validators). The page shows where the help center is (``public.address_of``), links to it, and
says whether this server admits the custom domain (LOKET_ALLOWED_HOSTS is the operator's,
docs/helpcenter.md). Owners and admins only; one row per workspace, never another's."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http.request import validate_host
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from loket.knowledge import public
from loket.knowledge.models import HelpCenter
from loket.tenancy.services import NotAllowed, require_admin
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"
BASE_LOCALES = ("en", "nl")
MAX_TITLE = 100


def _language_name(code: str) -> str:
    for candidate in (code, code.split("-")[0]):
        try:
            return translation.get_language_info(candidate)["name_local"]
        except KeyError:
            continue
    return code


def locale_choices(workspace, help_center: HelpCenter) -> list[str]:
    """English and Dutch, the workspace's languages, then any locale the help center has."""
    found = list(BASE_LOCALES)
    extra = list(getattr(workspace, "languages", None) or [])
    extra += [*(help_center.locales or []), help_center.default_locale]
    for code in extra:
        code = str(code or "").strip().lower()
        if code and code not in found:
            found.append(code)
    return found


class HelpCenterForm(forms.ModelForm):
    enabled = forms.BooleanField(
        label=gettext_lazy("Help center is public"),
        required=False,
        help_text=gettext_lazy(
            "Off: nothing is public, and the live-chat widget suggests no articles."
        ),
    )
    default_locale = forms.ChoiceField(
        label=gettext_lazy("Default language"),
        help_text=gettext_lazy("For readers whose browser asks for none of the languages offered."),
    )
    locales = forms.MultipleChoiceField(
        label=gettext_lazy("Languages offered"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("The default language is always offered."),
    )
    brand_color = forms.CharField(
        label=gettext_lazy("Brand colour"),
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"placeholder": "#1a73e8", "size": 9}),
        help_text=gettext_lazy("For the header, links and buttons, e.g. #1a73e8. Empty: Loket's."),
    )
    logo_url = forms.URLField(
        label=gettext_lazy("Logo address"),
        required=False,
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://www.example.com/logo.png"}),
        help_text=gettext_lazy("An image over https://, shown in the header."),
    )
    custom_domain = forms.CharField(
        label=gettext_lazy("Custom domain"),
        required=False,
        max_length=253,
        widget=forms.TextInput(attrs={"placeholder": "help.example.com", "spellcheck": "false"}),
        help_text=gettext_lazy("Optional: a host name such as help.example.com."),
    )

    class Meta:
        model = HelpCenter
        fields = ["enabled", "default_locale", "brand_color", "logo_url", "custom_domain"]

    def __init__(self, *args, workspace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.codes = locale_choices(workspace, self.instance)
        choices = [(code, f"{_language_name(code)} ({code})") for code in self.codes]
        self.fields["default_locale"].choices = choices
        self.fields["locales"].choices = choices
        if not self.is_bound:
            self.initial["locales"] = self.instance.offered_locales
        titles = self.instance.titles or {}
        for code in self.codes:
            self.fields[f"title_{code}"] = forms.CharField(
                label=_("Title (%(language)s)") % {"language": _language_name(code)},
                required=False,
                max_length=MAX_TITLE,
                initial=titles.get(code, ""),
                widget=forms.TextInput(
                    attrs={
                        "placeholder": _("%(name)s help center") % {"name": workspace.name},
                        "lang": code,
                    }
                ),
            )

    def title_fields(self):
        return [self[f"title_{code}"] for code in self.codes]

    def clean_logo_url(self) -> str:
        value = (self.cleaned_data.get("logo_url") or "").strip()
        if value and not value.lower().startswith("https://"):
            raise forms.ValidationError(_("Use an address that starts with https://."))
        return value

    def clean_custom_domain(self) -> str | None:
        # As the model stores it: lower-case, no trailing dot. Then the model's validator.
        value = (self.cleaned_data.get("custom_domain") or "").strip().lower().rstrip(".")
        if not value:
            return None
        own = (settings.LOKET_PUBLIC_URL.split("://", 1)[-1].split("/", 1)[0]).split(":")[0]
        if value == own.lower():
            raise forms.ValidationError(
                _("That is Loket's own address; enter the help center's own domain.")
            )
        taken = (
            HelpCenter.objects.filter(custom_domain=value)
            .exclude(workspace_id=self.workspace.pk)
            .exists()
        )
        if taken:
            raise forms.ValidationError(_("Another help center already uses this domain."))
        return value

    def clean(self):
        cleaned = super().clean()
        default = cleaned.get("default_locale")
        if default:
            offered = [c for c in self.codes if c in (cleaned.get("locales") or [])]
            if default not in offered:
                offered.insert(0, default)
            self.instance.locales = offered
        self.instance.titles = {
            code: title
            for code in self.codes
            if (title := " ".join((cleaned.get(f"title_{code}") or "").split()))
        }
        return cleaned

    def validate_unique(self) -> None:
        pass  # the custom domain's uniqueness is checked above, with a clearer message


def host_admitted(domain: str) -> bool:
    """Whether this server's ALLOWED_HOSTS (LOKET_ALLOWED_HOSTS) lets requests for ``domain``
    through; in DEBUG Django also admits localhost names, which no custom domain is."""
    return validate_host(domain, settings.ALLOWED_HOSTS)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def help_center(request):
    workspace = request.workspace
    found = HelpCenter.objects.filter(workspace=workspace).first() or HelpCenter(
        workspace=workspace
    )
    domain = found.custom_domain  # as stored (the form changes the instance while checking)
    form = HelpCenterForm(request.POST or None, instance=found, workspace=workspace)
    if request.method == "POST":
        try:
            require_admin(
                request.membership, workspace.pk, _("Only admins can change the help center.")
            )
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        if form.is_valid():
            with transaction.atomic():
                saved = form.save(commit=False)
                saved.workspace = workspace
                saved.updated_at = timezone.now()  # the brand stylesheet's version
                saved.save()
            messages.success(request, _("Help center settings saved."))
            return redirect("wsettings:help-center", workspace.slug)
    address = public.address_of(workspace.pk)
    own_origin = f"{settings.LOKET_PUBLIC_URL}/help/{workspace.slug}"
    return render(
        request,
        TEMPLATES + "help_center.html",
        {
            "form": form,
            "help_center": found,
            "address": address,
            "open_url": f"{address.origin}/" if address else "",
            "own_url": f"{own_origin}/",
            "domain": domain,
            "domain_admitted": host_admitted(domain) if domain else False,
        },
    )

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

_ATTRIBUTE_NAME_LENGTH = 64


def attribute_text(value: Any) -> str:
    """How an attribute's value is written in the form: text as it is, anything else (numbers,
    lists, true/false set through the API) as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    email = forms.EmailField(label=_("Email"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    locale = forms.CharField(
        label=_("Language"),
        max_length=10,
        required=False,
        help_text=_("A language code such as en or nl."),
    )
    attributes = forms.CharField(
        label=_("Custom attributes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=_("One per line, as name = value."),
    )

    def __init__(self, *args, contact, **kwargs):
        self.current_attributes = dict(contact.attributes)
        initial = {
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "locale": contact.locale,
            "attributes": "\n".join(
                f"{key} = {attribute_text(value)}"
                for key, value in sorted(contact.attributes.items())
            ),
        }
        super().__init__(*args, initial=initial, **kwargs)

    def clean_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for number, line in enumerate(self.cleaned_data["attributes"].splitlines(), start=1):
            if not line.strip():
                continue
            name, separator, text = line.partition("=")
            name, text = name.strip(), text.strip()
            if not separator or not name:
                raise forms.ValidationError(
                    _("Line %(number)s: write it as name = value."), params={"number": number}
                )
            if len(name) > _ATTRIBUTE_NAME_LENGTH:
                raise forms.ValidationError(
                    _("Line %(number)s: a name has at most %(limit)s characters."),
                    params={"number": number, "limit": _ATTRIBUTE_NAME_LENGTH},
                )
            if name in attributes:
                raise forms.ValidationError(_("“%(name)s” is there twice."), params={"name": name})
            # An unchanged value keeps its type (a number set through the API stays a number).
            current = self.current_attributes.get(name)
            unchanged = current is not None and attribute_text(current) == text
            attributes[name] = current if unchanged else text
        return attributes


class MergeForm(forms.Form):
    source = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    # Where to go afterwards: back to the suggested duplicates, or the merged contact.
    back_to = forms.ChoiceField(
        choices=[("contact", "contact"), ("duplicates", "duplicates")],
        required=False,
        widget=forms.HiddenInput,
    )

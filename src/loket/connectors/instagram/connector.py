"""Instagram direct messages through Meta's Messenger API for Instagram.

The Messenger connector with what differs: notifications say ``"object": "instagram"`` and
``entry.id`` is the Instagram professional account's id; customers are Instagram-scoped ids
(IGSID); they share posts, reels and mention the business in stories; a read report names the
message read. Sending is the same ``POST {graph}/v21.0/me/messages`` with the token of the
Facebook Page the account is linked to. See README.md beside this file.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.connectors.base import InvalidConfig, SetupField
from loket.connectors.messenger.connector import (
    _DIGITS,
    MessengerConnector,
    _check_page,
    _dict,
    _id,
    _text,
)
from loket.connectors.meta import graph
from loket.inbox.models import Channel


class InstagramConnector(MessengerConnector):
    key = "instagram"
    label = _("Instagram")
    setup_fields = (
        SetupField(
            "instagram_account_id",
            _("Instagram professional account ID"),
            help=_("The Instagram account's id (a number like 17841400000000000), shown in Meta's"
                   " app dashboard under Instagram settings, or as instagram_business_account"
                   " of the linked Page."),
        ),
        SetupField(
            "page_id",
            _("Linked Facebook Page ID"),
            help=_("The Facebook Page the Instagram account is linked to; optional, Loket then"
                   " checks the token belongs to it."),
            required=False,
        ),
        SetupField(
            "page_access_token",
            _("Page access token"),
            help=_("A long-lived access token of the linked Page with instagram_basic,"
                   " instagram_manage_messages and pages_messaging."),
            secret=True,
        ),
        SetupField(
            "app_secret",
            _("App secret"),
            help=_("App settings > Basic in Meta's app dashboard; Loket checks every delivery's"
                   " signature with it."),
            secret=True,
        ),
        SetupField(
            "verify_token",
            _("Webhook verify token"),
            help=_("Leave blank and Loket makes one (shown once); paste it with the webhook URL"
                   " into the app's Instagram webhook settings."),
            secret=True,
            required=False,
        ),
    )  # fmt: skip

    webhook_object = "instagram"
    account_setting = "instagram_account_id"
    inbound_attachment_kinds = frozenset(
        {"image", "video", "audio", "file", "share", "story_mention", "reel", "ig_reel"}
    )
    profile_fields = "name,username,profile_pic"
    # Instagram's webhook fields are chosen in the app dashboard (the "instagram" object), not
    # by subscribing the Page from here.
    subscribed_fields: tuple[str, ...] = ()

    @staticmethod
    def text_fits(text: str) -> bool:
        """Instagram takes at most 1,000 bytes of UTF-8 text in one message."""
        return len(text.encode()) <= 1000

    def _account_ids(self, config: dict[str, Any]) -> dict[str, str]:
        account = str(config.get("instagram_account_id") or "").strip()
        if not _DIGITS.match(account):
            raise InvalidConfig(
                gettext("The Instagram account ID is the account's number (digits only).")
            )
        page_id = str(config.get("page_id") or "").strip()
        if page_id and not _DIGITS.match(page_id):
            raise InvalidConfig(gettext("The Page ID is the Page's number (digits only)."))
        return {"instagram_account_id": account, "page_id": page_id}

    def check_connection(self, channel: Channel) -> None:
        """The token is the linked Page's, and that Page's Instagram account is this one; keeps
        the Page's name and the account's username in the settings."""
        fields = "id,name,instagram_business_account{id,username}"
        me = graph.checking(lambda: self._graph(channel).get("me", fields=fields))
        page_id = channel.settings.get("page_id")
        _check_page(me, page_id)
        linked = _dict(me.get("instagram_business_account"))
        account = channel.settings.get("instagram_account_id")
        if linked and _id(linked.get("id")) != account:
            raise InvalidConfig(
                gettext("The token's Page is linked to Instagram account %(other)s, not to"
                        " %(account)s.") % {"other": linked.get("id"), "account": account}
            )  # fmt: skip
        self._remember(
            channel,
            {
                "page_name": _text(me.get("name"), 200),
                "instagram_username": _text(linked.get("username"), 100),
            },
        )

    def _attachment_note(self, kind: str, payload: dict[str, Any]) -> str:
        title = _text(payload.get("title"), 300)
        words = {
            "share": gettext("[Shared a post]"),
            "story_mention": gettext("[Mentioned you in their story]"),
            "reel": gettext("[Shared a reel]"),
            "ig_reel": gettext("[Shared a reel]"),
        }.get(kind, "")
        return f"{words} {title}".strip() if words and title else words

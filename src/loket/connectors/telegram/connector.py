"""Telegram: a bot (Telegram Bot API) as a support channel.

Inbound: Telegram POSTs each Update to ``/hooks/telegram/<channel uuid>/`` with the secret we
registered through ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``.
Outbound: ``sendMessage``, ``sendPhoto`` and ``sendDocument``. Media: ``getFile`` then the file URL.
A tapped inline keyboard is taken away in the background (``editMessageReplyMarkup``, tasks.py).

Ids (see updates.py): every Telegram message id Loket stores is ``"<chat id>:<message id>"``,
inbound and outbound alike; a customer is their private chat's id, or in a group
``"<group chat id>:<user id>"``, and replies go to the chat before the colon. README.md beside
this file has the setup steps and formats.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import secrets
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.connectors.base import (
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    MediaSource,
    MediaUnavailable,
    PermanentSendError,
    SendResult,
    SetupField,
    TransientSendError,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
    attachment_bytes,
)
from loket.connectors.payload import as_dict as obj
from loket.connectors.telegram import tasks, updates
from loket.connectors.telegram.client import (
    BotApi,
    TelegramError,
    TelegramUnreachable,
    Upload,
    file_url,
)
from loket.connectors.telegram.updates import message_key, person_name, text_of, timestamp
from loket.connectors.text import split_text
from loket.inbox.items import InboundItem
from loket.inbox.models import AttachmentStatus, Channel, Direction, Message
from loket.inbox.services import choices, outbound

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
ALLOWED_UPDATES = ("message", "edited_message", "message_reaction", "callback_query")
TOKEN_RE = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{30,64}$")

TEXT_LIMIT = 4096  # sendMessage, in UTF-16 code units
# Choices: an inline keyboard, one button a row. callback_data takes 1-64 bytes: a longer id goes
# as a token ("loket:<n>") recorded on the reply (data[KEYBOARD_KEY]) and resolved on the tap.
CALLBACK_DATA_MAX = 64
BUTTON_TEXT_MAX = 64
STAND_IN_PREFIX = "loket:"
KEYBOARD_KEY = "telegram_keyboard"
CAPTION_LIMIT = 1024
PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto
UPLOAD_LIMIT = 50 * 1024 * 1024  # sendDocument
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramConnector(Connector):
    key = "telegram"
    label = _("Telegram")
    capabilities = Capabilities(
        text=True,
        media=True,
        delivery_statuses=False,  # the Bot API reports neither delivery nor reading
        choices=20,  # an inline keyboard, one button a row
        choice_title_max=64,
    )
    setup_fields = (
        SetupField(
            name="bot_token",
            label=_("Bot token"),
            help=_(
                "Create a bot with @BotFather in Telegram (/newbot) and paste the token it "
                "gives you, e.g. 123456789:AAF..."
            ),
            secret=True,
        ),
    )
    shows_webhook_url = False  # Loket registers its webhook with Telegram itself

    # -- setup ------------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        unknown = set(config) - {"bot_token"}
        if unknown:
            raise InvalidConfig(
                gettext("unknown setting(s): %(names)s") % {"names": ", ".join(sorted(unknown))}
            )
        token = str(config.get("bot_token") or "").strip()
        stored = dict(existing.secrets or {}) if existing is not None else {}
        if not token:
            token = stored.get("bot_token", "")
            if not token:
                raise InvalidConfig(gettext("Enter the bot token @BotFather gave you."))
        found = TOKEN_RE.match(token)
        if not found:
            raise InvalidConfig(
                gettext(
                    "That does not look like a Telegram bot token: it has the form "
                    "123456789:AAF... (digits, a colon, then about 35 letters, digits, - or _)."
                )
            )
        bot_id = found.group(1)
        settings: dict[str, Any] = {"bot_id": bot_id}
        if existing is not None and str((existing.settings or {}).get("bot_id")) == bot_id:
            settings = {**existing.settings, "bot_id": bot_id}  # same bot: keep what getMe said
        return ChannelSetup(
            settings=settings,
            secrets={
                "bot_token": token,
                # Telegram puts it in every delivery's X-Telegram-Bot-Api-Secret-Token.
                "webhook_secret": stored.get("webhook_secret") or secrets.token_urlsafe(32),
            },
        )

    def _api(self, channel: Channel) -> BotApi:
        token = (channel.secrets or {}).get("bot_token", "")
        if not token:
            raise InvalidConfig(gettext("This Telegram channel has no bot token."))
        return BotApi(token)

    def _remember_bot(self, channel: Channel, api: BotApi) -> dict[str, Any]:
        try:
            me = obj(api.call("getMe"))
        except TelegramError as exc:
            if exc.status in (401, 404):
                raise InvalidConfig(
                    gettext(
                        "Telegram does not accept the bot token (401 Unauthorized): the token "
                        "is wrong or was revoked. Copy it again from @BotFather."
                    )
                ) from None
            raise InvalidConfig(
                gettext("Telegram did not answer getMe: %(reason)s") % {"reason": exc.description}
            ) from None
        except TelegramUnreachable as exc:
            raise InvalidConfig(str(exc)) from None
        known = {
            "bot_id": text_of(me.get("id")) or channel.settings.get("bot_id", ""),
            "bot_username": text_of(me.get("username")),
            "bot_name": person_name(me),
        }
        if any(channel.settings.get(k) != v for k, v in known.items()):
            channel.settings = {**(channel.settings or {}), **known}
            channel.save(update_fields=["settings"])
        return me

    def channel_saved(self, channel: Channel) -> None:
        from loket.connectors.registry import webhook_url  # the registry imports this module

        api = self._api(channel)
        self._remember_bot(channel, api)
        try:
            api.call(
                "setWebhook",
                {
                    "url": webhook_url(channel),
                    "secret_token": channel.secrets["webhook_secret"],
                    "allowed_updates": list(ALLOWED_UPDATES),
                    "drop_pending_updates": False,
                },
            )
        except TelegramError as exc:
            raise InvalidConfig(
                gettext("Telegram did not accept Loket's webhook: %(reason)s")
                % {"reason": exc.description}
            ) from None
        except TelegramUnreachable as exc:
            raise InvalidConfig(str(exc)) from None

    def check_connection(self, channel: Channel) -> None:
        from loket.connectors.registry import webhook_url

        api = self._api(channel)
        self._remember_bot(channel, api)
        try:
            info = obj(api.call("getWebhookInfo"))
        except (TelegramError, TelegramUnreachable) as exc:
            reason = exc.description if isinstance(exc, TelegramError) else str(exc)
            raise InvalidConfig(
                gettext("Telegram did not answer getWebhookInfo: %(reason)s") % {"reason": reason}
            ) from None
        expected = webhook_url(channel)
        current = text_of(info.get("url"), 2000)
        if current != expected:
            if not current:
                raise InvalidConfig(
                    gettext(
                        "The bot has no webhook, so Telegram does not send its messages to "
                        "Loket. Save the channel again to register %(url)s."
                    )
                    % {"url": expected}
                )
            raise InvalidConfig(
                gettext(
                    "Telegram sends this bot's updates to %(current)s, not to Loket "
                    "(%(url)s). Another program uses the same bot; save the channel again to "
                    "take it back."
                )
                % {"current": current, "url": expected}
            )
        last_error = text_of(info.get("last_error_message"), 500)
        last_error_at = timestamp(info.get("last_error_date"))
        pending = info.get("pending_update_count") or 0
        recent = last_error_at is not None and (
            dt.datetime.now(dt.UTC) - last_error_at < dt.timedelta(minutes=10)
        )
        if last_error and (recent or pending):
            raise InvalidConfig(
                gettext(
                    "Telegram could not deliver to Loket (%(pending)s update(s) waiting): %(error)s"
                )
                % {"pending": pending, "error": last_error}
            )

    # -- inbound ----------------------------------------------------------------------------------
    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        given = request.headers.get(SECRET_HEADER, "")
        if not given:
            raise WebhookRejected("missing X-Telegram-Bot-Api-Secret-Token header", 401)
        expected = (channel.secrets or {}).get("webhook_secret", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("wrong X-Telegram-Bot-Api-Secret-Token", 403)

    def acknowledge(self, channel: Channel, request: WebhookRequest) -> WebhookResponse:
        # A pressed button spins on the customer's screen until the bot answers the callback
        # query; Telegram takes one method call as the webhook's answer: no extra request.
        answer = updates.callback_answer(request.body)
        if answer is not None:
            return WebhookResponse(200, json.dumps(answer).encode())
        return super().acknowledge(channel, request)

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        return [
            tasks.with_keyboard_removal(channel, item)
            for item in self._resolve_tokens(channel, updates.parse_update(body))
        ]

    # -- media ------------------------------------------------------------------------------------
    def resolve_media(self, channel: Channel, ref: str) -> MediaSource:
        try:
            api = self._api(channel)
        except InvalidConfig as exc:
            raise MediaUnavailable(str(exc)) from None
        try:
            found = obj(api.call("getFile", {"file_id": ref}))
        except TelegramUnreachable as exc:
            raise MediaUnavailable(str(exc), transient=True) from None
        except TelegramError as exc:
            if "too big" in exc.description.lower():
                raise MediaUnavailable(
                    gettext(
                        "The file is larger than the 20 MB Telegram lets bots download; ask "
                        "the customer to send it another way (e.g. by email)."
                    )
                ) from None
            if exc.transient:
                raise MediaUnavailable(
                    gettext("Telegram is not available: %(reason)s") % {"reason": exc.description},
                    transient=True,
                    retry_after=exc.retry_after,
                ) from None
            if exc.status == 401:
                raise MediaUnavailable(
                    gettext("Telegram no longer accepts this channel's bot token.")
                ) from None
            raise MediaUnavailable(
                gettext("Telegram could not provide the file: %(reason)s")
                % {"reason": exc.description}
            ) from None
        path = text_of(found.get("file_path"), 1000)
        if not path:
            raise MediaUnavailable(gettext("Telegram has no downloadable copy of this file."))
        return MediaSource(url=file_url(api.token, path))

    # -- outbound ---------------------------------------------------------------------------------
    def send(self, channel: Channel, message: Message) -> SendResult:
        recipient = outbound.recipient_id(message)
        if not recipient:
            raise PermanentSendError(gettext("This customer has no Telegram chat on this channel."))
        chat_part = recipient.split(":", 1)[0]
        try:
            chat_id: int | str = int(chat_part)
        except ValueError:
            chat_id = chat_part
        try:
            api = self._api(channel)
        except InvalidConfig as exc:
            raise PermanentSendError(str(exc)) from None
        reply = self._reply_parameters(message, chat_id, group=":" in recipient)
        files = [
            attachment
            for attachment in message.attachments.order_by("pk")
            if attachment.status == AttachmentStatus.STORED
        ]
        text = message.text or ""
        fits = lambda piece: _utf16_len(piece) <= TEXT_LIMIT  # noqa: E731
        texts = split_text(text, fits) if text.strip() else []
        keyboard, tokens = self._keyboard(message)
        if keyboard and not texts:
            texts = [choices.prompt_of(message)]
        caption = ""
        if (
            files
            and not keyboard
            and texts
            and len(texts) == 1
            and _utf16_len(texts[0]) <= CAPTION_LIMIT
        ):
            caption, texts = texts[0], []
        if not texts and not files:
            raise PermanentSendError(gettext("There is nothing to send: the reply has no text."))

        sent: list[int] = []
        problems: list[str] = []

        def attempt(method: str, payload: dict[str, Any], upload: Upload | None = None) -> bool:
            """Send one part; False when Telegram refused it after an earlier part arrived."""
            if reply and not sent:
                payload = {**payload, "reply_parameters": reply}
            try:
                result = obj(api.call(method, {"chat_id": chat_id, **payload}, upload=upload))
            except (TelegramError, TelegramUnreachable) as exc:
                if (
                    upload is not None
                    and upload.field == "photo"
                    and isinstance(exc, TelegramError)
                    and exc.status == 400
                    and re.search(r"PHOTO|IMAGE", exc.description)
                ):
                    # Sizes or proportions sendPhoto does not take: the file goes as it is.
                    document = Upload(
                        "document", upload.filename, upload.content_type, upload.content
                    )
                    return attempt("sendDocument", payload, document)
                error = _send_error(exc)
                if not sent:
                    raise error from None
                # Part of the reply reached the customer: a retry would repeat it.
                name = upload.filename if upload else gettext("part of the text")
                problems.append(f"{name}: {error.reason}")
                return False
            if isinstance(result.get("message_id"), int):
                sent.append(result["message_id"])
            return True

        def send_texts() -> None:
            for number, piece in enumerate(texts, start=1):
                if keyboard and number == len(texts):
                    # The buttons go under the last text; long ids were sent as tokens,
                    # resolved from this record when the customer taps (see parse).
                    if attempt("sendMessage", {"text": piece, "reply_markup": keyboard}) and tokens:
                        outbound.keep_on_message(
                            message,
                            KEYBOARD_KEY,
                            {"message": message_key(chat_id, sent[-1]), "tokens": tokens},
                        )
                else:
                    attempt("sendMessage", {"text": piece})

        if not keyboard:
            send_texts()
        for attachment in files:
            if attachment.size > UPLOAD_LIMIT:
                error = PermanentSendError(
                    gettext("%(name)s is larger than the 50 MB Telegram accepts from bots.")
                    % {"name": attachment.filename}
                )
                if not sent:
                    raise error
                problems.append(error.reason)
                continue
            try:
                content = attachment_bytes(attachment)
            except PermanentSendError as error:  # the stored file is gone or unreadable
                if not sent:
                    raise
                problems.append(error.reason)
                continue
            as_photo = attachment.content_type in PHOTO_TYPES and len(content) <= PHOTO_LIMIT
            payload = {"caption": caption} if caption else {}
            caption = ""
            attempt(
                "sendPhoto" if as_photo else "sendDocument",
                payload,
                Upload(
                    "photo" if as_photo else "document",
                    attachment.filename,
                    attachment.content_type,
                    content,
                ),
            )
        if keyboard:
            send_texts()  # the files go first: the buttons belong under the last message
        if not sent:
            raise PermanentSendError(gettext("Telegram did not return the sent message's id."))
        warning = ""
        if problems:
            warning = gettext("Not everything reached the customer: %(problems)s") % {
                "problems": "; ".join(problems)
            }
        return SendResult(external_id=message_key(chat_id, sent[0]), warning=warning)

    @staticmethod
    def _keyboard(message: Message) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The choices as an inline keyboard, one button a row, and the tokens that stand in
        for ids longer than the 64 bytes of ``callback_data``."""
        items = choices.native_choices(message)
        if not items:
            return None, {}
        rows = []
        tokens: dict[str, str] = {}
        for index, item in enumerate(items, start=1):
            data = item["id"]
            if len(data.encode()) > CALLBACK_DATA_MAX or data.startswith(STAND_IN_PREFIX):
                data = f"{STAND_IN_PREFIX}{index}"
                tokens[data] = item["id"]
            title = choices.shorten(item["title"], BUTTON_TEXT_MAX)
            rows.append([{"text": title, "callback_data": data}])
        return {"inline_keyboard": rows}, tokens

    def _resolve_tokens(self, channel: Channel, items: list[InboundItem]) -> list[InboundItem]:
        """A tapped button whose callback_data stands for a long id: the id it stands for, from
        the reply that showed the keyboard."""
        for item in items:
            choice = obj(getattr(item, "data", None) or {}).get("choice")
            if not isinstance(choice, dict) or not str(choice.get("id")).startswith(
                STAND_IN_PREFIX
            ):
                continue
            shown = (
                Message.objects.filter(
                    channel=channel,
                    direction=Direction.OUTBOUND,
                    **{f"data__{KEYBOARD_KEY}__message": getattr(item, "reply_to", "")},
                )
                .values_list("data", flat=True)
                .first()
            )
            tokens = obj(obj(shown).get(KEYBOARD_KEY)).get("tokens")
            if isinstance(tokens, dict) and choice["id"] in tokens:
                choice["token"] = choice["id"]
                choice["id"] = str(tokens[choice["id"]])
        return items

    def _reply_parameters(
        self, message: Message, chat_id: int | str, *, group: bool
    ) -> dict[str, Any] | None:
        """Which message the reply quotes: ``data["reply_to"]`` when the agent chose one (a
        Telegram id ``"<chat>:<message>"``, or ``{"external_id": ...}`` / ``{"id": <Loket
        message id>}`` as ingest records reply contexts); in a group, the customer's latest
        message, so the group sees who is being answered."""
        target = (message.data or {}).get("reply_to")
        if isinstance(target, dict):
            if target.get("external_id"):
                target = str(target["external_id"])
            elif target.get("id"):
                target = (
                    Message.objects.filter(pk=target["id"], channel_id=message.channel_id)
                    .values_list("external_id", flat=True)
                    .first()
                )
        if not isinstance(target, str) and group:
            target = (
                Message.objects.filter(
                    conversation_id=message.conversation_id,
                    channel_id=message.channel_id,
                    direction=Direction.INBOUND,
                    external_id__startswith=f"{chat_id}:",
                )
                .exclude(external_id__contains=":callback:")
                .order_by("-created_at", "-pk")
                .values_list("external_id", flat=True)
                .first()
            )
        if not isinstance(target, str):
            return None
        chat, _sep, message_id = target.rpartition(":")
        if chat != str(chat_id) or not message_id.isdigit():
            return None
        return {"message_id": int(message_id), "allow_sending_without_reply": True}


_PLAIN_REASONS = (
    (
        "bot was blocked by the user",
        _(
            "The customer has blocked the bot in Telegram, so it cannot send them messages "
            "until they unblock it."
        ),
    ),
    ("user is deactivated", _("This Telegram account has been deleted.")),
    ("bot was kicked", _("The bot was removed from this Telegram group.")),
    ("not a member", _("The bot is no longer a member of this Telegram group.")),
    (
        "bot can't initiate conversation",
        _("The customer has not started a chat with the bot, so it cannot write to them."),
    ),
    (
        "chat not found",
        _("Telegram does not know this chat (the customer may have deleted it)."),
    ),
    ("have no rights to send", _("The bot is not allowed to send messages in this group.")),
    ("not enough rights", _("The bot is not allowed to send messages in this group.")),
    ("message is too long", _("The message is longer than Telegram allows.")),
    ("too big", _("The file is larger than Telegram accepts from bots.")),
    ("request entity too large", _("The file is larger than Telegram accepts from bots.")),
)


def _send_error(
    exc: TelegramError | TelegramUnreachable,
) -> TransientSendError | PermanentSendError:
    if isinstance(exc, TelegramUnreachable):
        return TransientSendError(str(exc))
    if exc.transient:
        return TransientSendError(
            gettext("Telegram answered %(status)s: %(reason)s")
            % {"status": exc.status, "reason": exc.description},
            exc.retry_after,
        )
    if exc.status == 401:
        return PermanentSendError(
            gettext(
                "Telegram no longer accepts the bot token; an admin needs to enter a new one "
                "from @BotFather in the channel settings."
            )
        )
    if exc.migrate_to_chat_id:
        return PermanentSendError(
            gettext(
                "This group became a supergroup in Telegram; the customer's next message there "
                "continues in a new conversation."
            )
        )
    lowered = exc.description.lower()
    for needle, reason in _PLAIN_REASONS:
        if needle in lowered:
            return PermanentSendError(f"{reason} (Telegram: {exc.description})")
    return PermanentSendError(
        gettext("Telegram refused the message: %(reason)s") % {"reason": exc.description}
    )

"""Seed the demo workspace (slug ``demo``). Idempotent: existing data is kept.

Besides people, a team and sample conversations it has a live-chat channel ("Website chat")
with the "Ferry booking helper" bot on it (loket/bots/examples/ferry.json, published and on;
also on the workspace's WhatsApp channels, if any), and a knowledge base with its public help
center (loket/knowledge/examples/waddenveer.json), which the bot's questions step answers from.
The bot looks bookings up on the demo endpoint of this same server (loket.web.demo_api) at
``--base-url`` (default LOKET_PUBLIC_URL).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from loket.bots import examples
from loket.bots import services as flow_services
from loket.bots.models import Flow
from loket.connectors.registry import get_connector, webhook_url
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Channel, Conversation, DeliveryStatus, Priority
from loket.inbox.services import conversations as conversation_services
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel
from loket.inbox.services.ingest import receive
from loket.tenancy.models import ApiToken, Membership, Role, User, Workspace
from loket.tenancy.services import add_member, create_api_token, create_team, revoke_api_token

DEMO_PASSWORD = "loket-demo"  # noqa: S105 - a demo login, printed on purpose

PEOPLE = [
    ("owner@example.com", "Olivia Owner", Role.OWNER),
    ("anna@example.com", "Anna de Vries", Role.AGENT),
    ("bram@example.com", "Bram Jansen", Role.AGENT),
]

# (channel, contact id, name, email, locale, [(who, text)], status, priority)
CONVERSATIONS = [
    ("Webshop", "cust-1001", "Emily Carter", "emily.carter@example.org", "en",
     [("c", "Hi! I ordered a rain jacket last Tuesday (order LK-48213) and it still hasn't "
            "shipped. Can you check what's going on?"),
      ("a", "Hi Emily, thanks for waiting. Your jacket left our warehouse this morning; the "
            "tracking link is in your inbox. It should arrive Thursday."),
      ("c", "Great, thank you!")], "resolved", Priority.NONE),
    ("Webshop", "cust-1002", "Daan Visser", "daan.visser@example.nl", "nl",
     [("c", "Goedemiddag, ik wil graag mijn bestelling LK-48377 retourneren. De schoenen zijn "
            "een maat te klein. Hoe werkt dat?"),
      ("a", "Hoi Daan, dat kan zeker. Je kunt de schoenen binnen 30 dagen gratis retourneren "
            "via het retourformulier op onze site. Zal ik een retourlabel mailen?")],
     "open", Priority.MEDIUM),
    ("Webshop", "cust-1003", "Sophie Bakker", "sophie@example.nl", "nl",
     [("c", "Mijn pakket is beschadigd aangekomen, de doos was helemaal nat. Wat nu?")],
     "open", Priority.HIGH),
    ("Webshop", "cust-1004", "James O'Neill", "james.oneill@example.com", "en",
     [("c", "Do you ship to Ireland? And how long does delivery usually take?")],
     "open", Priority.NONE),
    ("Bookings", "guest-77", "Lotte Smit", "lotte.smit@example.nl", "nl",
     [("c", "Hallo, kan ik mijn boeking BK204518 omzetten naar een week later?"),
      ("a", "Hallo Lotte, ik kijk het even voor je na. Voor dezelfde kamer is er plek van "
            "14 t/m 21 juni. Zal ik dat voor je vastzetten?"),
      ("c", "Ja graag!")], "pending", Priority.MEDIUM),
    ("Bookings", "guest-78", "Mark Thompson", "mark.t@example.com", "en",
     [("c", "We're arriving late on Friday, around 11pm. Is check-in still possible?")],
     "open", Priority.URGENT),
]  # fmt: skip


class Command(BaseCommand):
    help = "Create (or keep) the demo workspace 'demo' and print its login and an API token."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--base-url",
            default="",
            help="Where the demo bot reaches this server's demo endpoint "
            "(default: LOKET_PUBLIC_URL). Used when the bot is first seeded.",
        )

    def handle(self, *args, **options) -> None:
        base_url = (options.get("base_url") or settings.LOKET_PUBLIC_URL).rstrip("/")
        with transaction.atomic():
            workspace, created = Workspace.objects.get_or_create(
                slug="demo", defaults={"name": "Demo Shop & Stay", "locale": "en"}
            )
            members = {}
            for email, name, role in PEOPLE:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create_user(email, DEMO_PASSWORD, name=name)
                members[email] = add_member(workspace, user, role=role)
            team = create_team(
                workspace, "Support", [members["anna@example.com"], members["bram@example.com"]]
            )
            if created or not Channel.objects.filter(workspace=workspace).exists():
                self._seed(workspace, members, team)
            website = self._live_chat(workspace, team)
            ferry = self._ferry_bot(workspace, team, website, base_url)
            articles = self._knowledge(workspace)
            owner = members["owner@example.com"]
            for old in ApiToken.objects.filter(membership=owner, name="demo", revoked_at=None):
                revoke_api_token(old)
            _, token = create_api_token(owner, name="demo")
        channels = Channel.objects.filter(workspace=workspace).order_by("pk")
        base = settings.LOKET_PUBLIC_URL
        self.stdout.write(
            "\nDemo workspace 'demo' is ready.\n"
            f"  Sign in:    {base}/accounts/login/\n"
            f"  Login:      owner@example.com / {DEMO_PASSWORD}"
            " (agents: anna@example.com, bram@example.com)\n"
            f"  API token:  {token}\n"
            f"  API docs:   {base}/api/v1/docs\n"
        )
        for channel in channels:
            if channel.kind == "livechat":
                self.stdout.write(
                    f"  Channel {channel.name!r} widget: "
                    f'<script src="{base}/widget/{channel.uuid}.js" async></script>'
                )
            else:
                self.stdout.write(f"  Channel {channel.name!r} webhook: {webhook_url(channel)}")
        self.stdout.write(
            f"  Bot:        {ferry.name!r} answers new chats on {website.name!r}"
            + ("" if ferry.enabled else " (switched off)")
        )
        self.stdout.write(
            f"  Help center: {base}/help/{workspace.slug}/ ({articles} articles in English and"
            " Dutch; the bot answers from them too)"
        )
        if not settings.LOKET_DEMO_ENDPOINTS:
            self.stdout.write(
                "              (its booking look-up needs LOKET_DEMO_ENDPOINTS=1 on the server)"
            )
        self.stdout.write("")

    def _knowledge(self, workspace: Workspace) -> int:
        """The example knowledge base (loket/knowledge/examples/waddenveer.json), published,
        indexed by the workers (its jobs go in with it), and the help center switched on."""
        from loket.knowledge import examples as kb_examples
        from loket.knowledge.models import Article, HelpCenter
        from loket.knowledge.tasks import index_article

        HelpCenter.objects.get_or_create(
            workspace=workspace,
            defaults={
                "enabled": True,
                "titles": {"en": "Waddenveer help", "nl": "Waddenveer helpcentrum"},
                "default_locale": "en",
                "locales": ["en", "nl"],
            },
        )
        if not Article.objects.filter(workspace=workspace).exists():
            ids = kb_examples.import_into(workspace, kb_examples.load("waddenveer"), index=False)
            for article_id in ids.values():
                index_article.enqueue(article_id)
        return Article.objects.filter(workspace=workspace).count()

    def _live_chat(self, workspace: Workspace, team) -> Channel:
        website = (
            Channel.objects.filter(workspace=workspace, kind="livechat").order_by("pk").first()
        )
        if website is None:
            website, _ = create_channel(
                workspace,
                get_connector("livechat"),
                name="Website chat",
                config={"title": "Demo Shop & Stay"},
                default_team=team,
            )
        return website

    def _ferry_bot(self, workspace: Workspace, team, website: Channel, base_url: str) -> Flow:
        """The "Ferry booking helper", published and on; kept as it is when it exists (an admin
        may have changed it)."""
        example = examples.load("ferry", base_url=base_url, team_id=team.pk)
        flow = Flow.objects.filter(workspace=workspace, name=example["name"]).first()
        if flow is not None:
            return flow
        whatsapp = Channel.objects.filter(workspace=workspace, kind="whatsapp")
        channel_ids = [website.pk, *whatsapp.values_list("pk", flat=True)]
        flow = flow_services.create_flow(
            workspace,
            name=example["name"],
            description=example["description"],
            draft=example["definition"],
            trigger=example["trigger"],
            handoff_words=example["handoff_words"],
            channel_ids=channel_ids,
        )
        flow_services.publish(flow)
        return flow_services.update_flow(flow, enabled=True)

    def _seed(self, workspace: Workspace, members: dict[str, Membership], team) -> None:
        api = get_connector("api")
        channels = {}
        for name in ("Webshop", "Bookings"):
            channels[name], _ = create_channel(
                workspace, api, name=name, config={"outbound_url": ""}, default_team=team
            )
        agents = [members["anna@example.com"], members["bram@example.com"]]
        start = timezone.now() - dt.timedelta(hours=30)
        for index, (channel_name, cid, name, email, locale, lines, status, prio) in enumerate(
            CONVERSATIONS
        ):
            channel = channels[channel_name]
            agent = agents[index % 2]
            conversation = None
            for line_no, (who, text) in enumerate(lines):
                if who == "c":
                    result = receive(
                        channel,
                        InboundMessage(
                            external_id=f"demo-{cid}-{line_no}",
                            contact=InboundContact(cid, name=name, email=email, locale=locale),
                            text=text,
                            sent_at=start + dt.timedelta(hours=index * 4, minutes=line_no * 7),
                        ),
                    )
                    conversation = Conversation.objects.get(pk=result.conversation_id)
                else:
                    message = outbound.reply(conversation, author=agent, text=text)
                    # Demo replies count as delivered; their queued send tasks then do nothing.
                    outbound.set_delivery_status(
                        message.pk,
                        DeliveryStatus.DELIVERED,
                        only_from=[DeliveryStatus.QUEUED],
                        external_id=f"demo-out-{message.pk}",
                    )
            conversation_services.update_conversation(
                conversation,
                actor=agent,
                assignee=agent if status != "open" or index % 3 else None,
                priority=prio,
                status=status,
            )

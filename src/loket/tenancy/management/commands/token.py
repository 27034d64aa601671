from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loket.tenancy.models import ApiToken, Membership
from loket.tenancy.services import create_api_token, revoke_api_token


class Command(BaseCommand):
    help = (
        "API tokens. `loket token create --workspace SLUG --email EMAIL` prints a new token; "
        "`loket token list --workspace SLUG`; `loket token revoke --workspace SLUG PREFIX`."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it (only the token)")
        create.add_argument("--workspace", required=True)
        create.add_argument("--email", required=True)
        create.add_argument("--name", default="cli")
        listing = sub.add_parser("list", help="the workspace's tokens (never their secrets)")
        listing.add_argument("--workspace", required=True)
        revoke = sub.add_parser("revoke", help="revoke a token by the prefix `list` shows")
        revoke.add_argument("--workspace", required=True)
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, workspace: str, **options):
        getattr(self, f"_{action}")(workspace, **options)

    def _create(self, workspace: str, *, email: str, name: str, **options) -> None:
        membership = (
            Membership.objects.select_related("workspace")
            .filter(workspace__slug=workspace, user__email__iexact=email)
            .first()
        )
        if membership is None:
            raise CommandError(f"{email} is not a member of workspace {workspace!r}")
        _, raw = create_api_token(membership, name=name)
        self.stdout.write(raw)

    def _list(self, workspace: str, **options) -> None:
        tokens = (
            ApiToken.objects.filter(workspace__slug=workspace)
            .select_related("membership__user")
            .order_by("created_at")
        )
        for token in tokens:
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.prefix}  {token.membership.user.email}  {token.name or '-'}  "
                f"created {token.created_at:%Y-%m-%d}  last used {used}  {state}"
            )

    def _revoke(self, workspace: str, *, prefix: str, **options) -> None:
        matches = list(
            ApiToken.objects.filter(
                workspace__slug=workspace, prefix__startswith=prefix, revoked_at__isnull=True
            )
        )
        if len(matches) != 1:
            found = "no active token" if not matches else f"{len(matches)} active tokens"
            raise CommandError(f"{found} in {workspace!r} start with {prefix!r}")
        revoke_api_token(matches[0])
        self.stdout.write(f"revoked {matches[0].prefix}")

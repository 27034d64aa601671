from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loket.tenancy.models import Membership
from loket.tenancy.services import create_api_token


class Command(BaseCommand):
    help = "API tokens. `loket token create --workspace SLUG --email EMAIL` prints a new token."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it (only the token)")
        create.add_argument("--workspace", required=True)
        create.add_argument("--email", required=True)
        create.add_argument("--name", default="cli")

    def handle(self, *args, action: str, workspace: str, email: str, name: str, **options):
        membership = (
            Membership.objects.select_related("workspace")
            .filter(workspace__slug=workspace, user__email__iexact=email)
            .first()
        )
        if membership is None:
            raise CommandError(f"{email} is not a member of workspace {workspace!r}")
        _, raw = create_api_token(membership, name=name)
        self.stdout.write(raw)

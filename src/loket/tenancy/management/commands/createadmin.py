from __future__ import annotations

import getpass
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from loket.tenancy.models import Membership, Role, User, Workspace


class Command(BaseCommand):
    help = "Create a user who owns a workspace (creating the workspace when it does not exist)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--workspace-name", default="")
        parser.add_argument("--name", default="")
        parser.add_argument("--password", default=None, help="prompted for when omitted")

    @transaction.atomic
    def handle(self, *args, email, workspace, workspace_name, name, password, **options):
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError("--password is required when not run interactively")
            password = getpass.getpass("Password: ")
        user = User.objects.filter(email__iexact=email).first() or User(
            email=email.lower(), name=name
        )
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        user.set_password(password)
        user.is_staff = True
        user.save()
        ws, _ = Workspace.objects.get_or_create(
            slug=slugify(workspace), defaults={"name": workspace_name or workspace}
        )
        Membership.objects.update_or_create(workspace=ws, user=user, defaults={"role": Role.OWNER})
        self.stdout.write(f"{user.email} owns workspace {ws.slug}")

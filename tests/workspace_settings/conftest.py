"""Fixtures for the settings pages: signed-in clients for an owner, an admin and an agent of
workspace "acme", and a second workspace whose rows must stay out of reach."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from loket.tenancy.models import Membership
from tests import factories


def url(name: str, workspace, *args) -> str:
    return reverse(f"wsettings:{name}", args=[workspace.slug, *args])


def signed_in(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return signed_in(owner)


@pytest.fixture
def admin_client(admin) -> Client:
    return signed_in(admin)


@pytest.fixture
def agent_client(agent) -> Client:
    return signed_in(agent)


@pytest.fixture
def other_workspace(db):
    return factories.workspace("bravo")

"""Fixtures for the live-chat tests."""

from tests.realtime.conftest import channel_layer  # noqa: F401 - a fresh layer per test

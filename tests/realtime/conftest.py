from __future__ import annotations

import copy
import uuid

import pytest


@pytest.fixture
def channel_layer(settings):
    """A fresh channel layer of the configured kind for one test.

    Changing CHANNEL_LAYERS makes Channels drop its cached layer, so the in-memory layer starts
    empty; a Redis layer gets a prefix of its own, so concurrent test runs on one Redis server
    (whose workspace ids all start at 1) never see each other's events.
    """
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].get("CONFIG")
    if config is not None and "prefix" in config:
        config["prefix"] = f"{config['prefix']}-test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers
    return layers["default"]

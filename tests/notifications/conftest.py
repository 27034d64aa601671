from __future__ import annotations

import copy
import uuid

import pytest


@pytest.fixture
def channel_layer(settings):
    """A fresh channel layer of the configured kind (as in tests/realtime): the in-memory one
    starts empty; a Redis one gets a prefix of its own, so concurrent runs never meet."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].get("CONFIG")
    if config is not None and "prefix" in config:
        config["prefix"] = f"{config['prefix']}-test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers
    return layers["default"]

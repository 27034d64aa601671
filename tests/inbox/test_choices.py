"""Choices in outbound messages: prepare() per channel and match() for the customer's answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loket.connectors.base import Capabilities
from loket.inbox import ports
from loket.inbox.services import choices

ITEMS = [
    {"id": "change", "title": "Change booking"},
    {"id": "refund", "title": "Refund"},
    {"id": "other", "title": "Other"},
]


@pytest.fixture(autouse=True)
def channel_kinds(monkeypatch):
    """Channels with and without buttons, independent of the real connectors' settings."""
    for kind, capabilities in {
        "buttons": Capabilities(choices=3, choice_title_max=20),
        "quick": Capabilities(choices=13, choice_title_max=20),
        "unlimited": Capabilities(choices=100),
        "sms": Capabilities(),
    }.items():
        monkeypatch.setitem(ports._connectors, kind, SimpleNamespace(capabilities=capabilities))


def channel(kind: str):
    return SimpleNamespace(kind=kind)


def answer(text: str = "", choice: dict | None = None):
    return SimpleNamespace(text=text, data={"choice": choice} if choice else {})


# -- prepare ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["whatsapp", "messenger", "instagram", "telegram", "livechat", "api"]
)
def test_native_channels_keep_the_text_and_get_the_choices(kind):
    text, data = choices.prepare(channel(kind), "What can we do?", ITEMS, prompt="Pick one")
    assert text == "What can we do?"
    assert data == {
        "choices": {
            "items": [{**item, "description": ""} for item in ITEMS],
            "prompt": "Pick one",
        }
    }
    assert choices.native_choices(SimpleNamespace(data=data)) == data["choices"]["items"]


@pytest.mark.parametrize("kind", ["sms", "carrier-pigeon"])
def test_channels_without_buttons_get_numbered_text(kind):
    text, data = choices.prepare(channel(kind), "What can we do?", ITEMS)
    assert text == "What can we do?\n\n1. Change booking\n2. Refund\n3. Other"
    assert data["choices"]["rendered"] == "numbered"
    assert data["choices"]["prompt"] == "Choose"
    assert [item["id"] for item in data["choices"]["items"]] == ["change", "refund", "other"]
    assert choices.native_choices(SimpleNamespace(data=data)) == []


def test_a_conversation_is_accepted_as_well_as_a_channel():
    conversation = SimpleNamespace(channel=channel("sms"))
    text, _ = choices.prepare(conversation, "Pick", ["Yes", "No"])
    assert text == "Pick\n\n1. Yes\n2. No"


def test_more_options_than_the_channel_shows_go_out_numbered():
    many = [{"id": f"o{n}", "title": f"Option {n}", "description": "d" if n == 1 else ""}
            for n in range(1, 5)]  # fmt: skip
    text, data = choices.prepare(channel("buttons"), "Which?", many)
    assert data["choices"]["rendered"] == "numbered"
    assert text.splitlines()[2] == "1. Option 1 - d"
    assert text.splitlines()[-1] == "4. Option 4"
    _, data = choices.prepare(channel("quick"), "Which?", many)
    assert "rendered" not in data["choices"]  # this one shows 13


def test_long_titles_are_cut_to_the_channels_limit_keeping_the_full_title():
    items = [
        {"id": "a", "title": "Change the date of my booking please"},
        {"id": "b", "title": "No"},
    ]
    _, data = choices.prepare(channel("buttons"), "Which?", items)
    first = data["choices"]["items"][0]
    assert len(first["title"]) <= 20 and first["title"].endswith("…")
    assert first["title"] == "Change the date of…"
    assert first["full_title"] == "Change the date of my booking please"
    assert "full_title" not in data["choices"]["items"][1]
    # Typed in full, the cut option is still recognised.
    assert choices.match(answer("change the date of my booking please"), data["choices"]) == first


def test_shorten():
    assert choices.shorten("Refund", 20) == "Refund"
    assert choices.shorten("Supercalifragilisticexpialidocious", 10) == "Supercali…"
    assert choices.shorten("a  b\n c", 0) == "a b c"


@pytest.mark.parametrize(
    "items, error",
    [([], "at least one"), ([{"id": "x", "title": ""}], "title"),
     (["Same", "Same"], "differ"), ([{"id": "x" * 300, "title": "Long"}], "at most")],
)  # fmt: skip
def test_bad_options_are_refused(items, error):
    with pytest.raises(ValueError, match=error):
        choices.prepare(channel("buttons"), "?", items)


def test_options_may_be_pairs_or_titles():
    assert choices.normalise_items([("y", "Yes"), "No"]) == [
        {"id": "y", "title": "Yes", "description": ""},
        {"id": "No", "title": "No", "description": ""},
    ]


def test_an_unknown_channel_kind_gets_numbered_text():
    text, data = choices.prepare(channel("carrier-pigeon"), "", ["Yes", "No"])
    assert text == "1. Yes\n2. No"
    assert data["choices"]["rendered"] == "numbered"


# -- match -----------------------------------------------------------------------------------


def test_a_tapped_button_matches_by_its_id():
    assert (
        choices.match(answer("whatever", {"id": "refund", "title": "?"}), ITEMS)["id"] == "refund"
    )


def test_a_tapped_button_with_an_unknown_id_matches_by_its_title():
    tapped = answer("Refund", {"id": "template-button-1", "title": "Refund"})
    assert choices.match(tapped, ITEMS)["id"] == "refund"


def test_the_items_may_be_a_messages_choices():
    _, data = choices.prepare(channel("sms"), "?", ITEMS)
    assert choices.match(answer("3"), data["choices"])["id"] == "other"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", "change"), ("2", "refund"), (" 3 ", "other"), ("2.", "refund"), ("#2", "refund"),
        ("2)", "refund"), ("nr 2", "refund"), ("optie 3", "other"), ("2. Refund", "refund"),
        ("0", None), ("4", None), ("12", None), ("2 tickets", None), ("2. Other", None),
    ],
)  # fmt: skip
def test_numbers(text, expected):
    found = choices.match(answer(text), ITEMS)
    assert (found or {}).get("id") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Refund", "refund"), ("refund", "refund"), ("  REFUND!  ", "refund"),
        ("change booking", "change"), ("Change Booking.", "change"),
        ("Refnud", None),  # two letters swapped in a short word: too far
        ("chnage booking", "change"), ("change bookng", "change"),  # small typos
        ("Chan", "change"), ("chang", "change"), ("Refu", "refund"),  # a unique start
        ("Ch", None), ("Re", None),  # too short to be sure
        ("I want my money back", None), ("", None), ("   ", None),
        ("other", "other"),
    ],
)  # fmt: skip
def test_typed_titles(text, expected):
    found = choices.match(answer(text), ITEMS)
    assert (found or {}).get("id") == expected


def test_accents_are_folded():
    items = [{"id": "cafe", "title": "Café"}, {"id": "creme", "title": "Crème brûlée"}]
    assert choices.match(answer("cafe"), items)["id"] == "cafe"
    assert choices.match(answer("CREME BRULEE"), items)["id"] == "creme"
    assert choices.match(answer("Crème brûlée"), items)["id"] == "creme"


def test_an_ambiguous_answer_matches_nothing():
    items = [
        {"id": "a", "title": "Change booking"},
        {"id": "b", "title": "Change address"},
        {"id": "c", "title": "Cancel"},
    ]
    assert choices.match(answer("change"), items) is None  # both start so
    assert choices.match(answer("change a"), items)["id"] == "b"  # a unique start
    assert choices.match(answer("change addr"), items)["id"] == "b"
    same = [{"id": "x", "title": "Yes"}, {"id": "y", "title": "yes"}]
    assert choices.match(answer("yes"), same) is None


def test_the_id_typed_matches():
    assert (
        choices.match(answer("REFUND"), [{"id": "refund", "title": "Money back"}])["id"] == "refund"
    )


def test_a_plain_string_is_accepted_as_the_answer():
    assert choices.match("2", ITEMS)["id"] == "refund"


def test_no_items_match_nothing():
    assert choices.match(answer("1"), []) is None
    assert choices.match(answer("1"), {"items": None}) is None


def test_dutch_titles():
    items = [{"id": "wijzig", "title": "Boeking wijzigen"}, {"id": "geld", "title": "Geld terug"}]
    assert choices.match(answer("boeking wijzige"), items)["id"] == "wijzig"
    assert choices.match(answer("geld terug graag"), items) is None
    assert choices.match(answer("nummer 2"), items)["id"] == "geld"

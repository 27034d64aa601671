"""Settings → Auto-replies (workspace and per channel, greeting / away / closing with days) and a
channel's own business hours: saving, what is refused, admins only, other workspaces' channels
out of reach."""

from __future__ import annotations

from loket.automation import autoreplies
from loket.automation.models import AutoReply, AutoReplyKind
from loket.inbox.models import Channel
from tests import factories
from tests.workspace_settings.conftest import url


def test_the_page_shows_the_three_kinds(admin_client, workspace):
    page = admin_client.get(url("auto-replies", workspace))
    assert page.status_code == 200
    html = page.content.decode()
    for kind in ("greeting", "away", "closing"):
        assert f'id="auto-reply-{kind}"' in html


def test_agents_may_not(agent_client, workspace):
    assert agent_client.get(url("auto-replies", workspace)).status_code == 403
    answer = agent_client.post(
        url("auto-replies", workspace), {"kind": "greeting", "mode": "on", "body": "Hi"}
    )
    assert answer.status_code == 403
    assert not AutoReply.objects.exists()


def test_setting_the_workspaces_greeting_and_closing(admin_client, workspace):
    answer = admin_client.post(
        url("auto-replies", workspace),
        {"kind": "greeting", "mode": "on", "body": "Hi {{contact.first_name|there}}!"},
    )
    assert answer.status_code == 302
    closing = admin_client.post(
        url("auto-replies", workspace),
        {"kind": "closing", "mode": "on", "body": "Closing this now.", "days": "5"},
    )
    assert closing.status_code == 302
    rows = {r.kind: r for r in AutoReply.objects.filter(channel__isnull=True)}
    assert rows["greeting"].enabled and rows["greeting"].body.startswith("Hi {{contact")
    assert rows["closing"].days == 5 and rows["closing"].enabled
    # Switched off again, the text is kept.
    admin_client.post(
        url("auto-replies", workspace),
        {"kind": "closing", "mode": "off", "body": "Closing this now.", "days": "5"},
    )
    rows["closing"].refresh_from_db()
    assert not rows["closing"].enabled and rows["closing"].body == "Closing this now."


def test_refused_values_are_shown(admin_client, workspace):
    too_long = admin_client.post(
        url("auto-replies", workspace),
        {"kind": "closing", "mode": "on", "body": "Bye", "days": "120"},
    )
    assert too_long.status_code == 400
    no_days = admin_client.post(
        url("auto-replies", workspace), {"kind": "closing", "mode": "on", "body": "Bye"}
    )
    assert no_days.status_code == 400
    assert "how many days" in no_days.content.decode()
    no_text = admin_client.post(
        url("auto-replies", workspace), {"kind": "away", "mode": "on", "body": ""}
    )
    assert no_text.status_code == 400
    assert not AutoReply.objects.exists()


def test_a_channel_overrides_switches_off_and_follows_the_workspace_again(admin_client, workspace):
    channel = factories.api_channel(workspace, name="Shop")
    autoreplies.configure(workspace, AutoReplyKind.AWAY, body="We are closed.")
    page = admin_client.get(url("auto-replies", workspace) + f"?channel={channel.pk}")
    assert page.status_code == 200 and "We are closed." in page.content.decode()
    own = admin_client.post(
        url("auto-replies", workspace) + f"?channel={channel.pk}",
        {"kind": "away", "mode": "on", "body": "The shop is closed.", "channel": channel.pk},
    )
    assert own.status_code == 302
    assert autoreplies.policies(channel)["away"].body == "The shop is closed."
    admin_client.post(
        url("auto-replies", workspace),
        {"kind": "away", "mode": "off", "body": "", "channel": channel.pk},
    )
    assert "away" not in autoreplies.policies(channel)
    admin_client.post(
        url("auto-replies", workspace),
        {"kind": "away", "mode": "inherit", "body": "", "channel": channel.pk},
    )
    assert autoreplies.policies(channel)["away"].body == "We are closed."
    assert not AutoReply.objects.filter(channel=channel).exists()


def test_another_workspaces_channel_is_a_404(admin_client, workspace, other_workspace):
    theirs = factories.api_channel(other_workspace, name="Theirs")
    page = admin_client.get(url("auto-replies", workspace) + f"?channel={theirs.pk}")
    assert page.status_code == 404
    answer = admin_client.post(
        url("auto-replies", workspace),
        {"kind": "away", "mode": "on", "body": "x", "channel": theirs.pk},
    )
    assert answer.status_code == 404
    assert admin_client.get(url("channel-hours", workspace, theirs.pk)).status_code == 404
    assert not AutoReply.objects.exists()


# -- a channel's own business hours -------------------------------------------------------------
def test_a_channel_gets_hours_holidays_and_a_time_zone_of_its_own(admin_client, workspace):
    channel = factories.api_channel(workspace, name="Phone")
    edit = admin_client.get(url("channel-edit", workspace, channel.pk)).content.decode()
    assert url("channel-hours", workspace, channel.pk) in edit
    card = admin_client.get(url("channel-hours", workspace, channel.pk), HTTP_HX_REQUEST="true")
    assert card.status_code == 200 and 'id="channel-hours"' in card.content.decode()
    answer = admin_client.post(
        url("channel-hours", workspace, channel.pk),
        {
            "own_hours": "on",
            "hours_mon": "09:00-12:00, 13:00-17:00",
            "hours_fri": "09:00-12:00",
            "holidays": "2026-12-25\n2026-12-26",
            "time_zone": "Europe/Amsterdam",
        },
    )
    assert answer.status_code == 302
    channel = Channel.objects.get(pk=channel.pk)
    assert channel.business_hours == {
        "hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": [["09:00", "12:00"]]},
        "holidays": ["2026-12-25", "2026-12-26"],
        "time_zone": "Europe/Amsterdam",
    }
    # The form shows what is stored.
    page = admin_client.get(url("channel-hours", workspace, channel.pk)).content.decode()
    assert "09:00-12:00, 13:00-17:00" in page and "2026-12-26" in page
    # Unticked and emptied: the workspace's again.
    admin_client.post(url("channel-hours", workspace, channel.pk), {"time_zone": ""})
    assert Channel.objects.get(pk=channel.pk).business_hours is None


def test_wrong_hours_are_refused(admin_client, agent_client, workspace):
    channel = factories.api_channel(workspace, name="Phone")
    answer = admin_client.post(
        url("channel-hours", workspace, channel.pk),
        {"own_hours": "on", "hours_mon": "17:00-09:00", "time_zone": ""},
    )
    assert answer.status_code == 400
    assert "is not before" in answer.content.decode()
    holidays = admin_client.post(
        url("channel-hours", workspace, channel.pk), {"holidays": "christmas", "time_zone": ""}
    )
    assert holidays.status_code == 400
    assert Channel.objects.get(pk=channel.pk).business_hours is None
    assert agent_client.get(url("channel-hours", workspace, channel.pk)).status_code == 403

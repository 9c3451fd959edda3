"""End to end: /images watch | unwatch | channels | categories, and the bot being invited."""

from __future__ import annotations

import json

from bot import admin
from storage.db import session_scope
from storage.models import Image
from tests.conftest import ADMIN, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL, TEAM
from tests.live import Live


def said(answer: dict) -> str:  # type: ignore[type-arg]
    return answer.get("text", "") + json.dumps(answer.get("blocks", []), ensure_ascii=False)


def test_admin_watches_a_channel_with_a_category_and_lists_it(live: Live) -> None:
    live.command("categories add Marketing")
    live.slack.add_channel("C0LAUNCH", "launch", members=[ADMIN, "UBOT"])
    answer = live.command("watch <#C0LAUNCH|launch> Marketing")
    assert answer["response_type"] == "ephemeral"
    assert "Watching <#C0LAUNCH>" in said(answer)
    assert "Marketing" in said(answer)
    watched = admin.watched_channels(live.db.factory, team_id=TEAM)
    assert ("C0LAUNCH", "Marketing") in [(w.channel_id, w.category) for w in watched]
    listing = said(live.command("channels", user=MEMBER))
    assert "<#C0LAUNCH>" in listing
    assert "Marketing" in listing


def test_non_admin_cannot_change_watched_channels(live: Live) -> None:
    answer = live.command(f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>", user=MEMBER)
    assert "Only admins can change watched channels" in said(answer)
    answer = live.command(f"unwatch <#{PUBLIC_CHANNEL}|marketing-shoots>", user=POSTER)
    assert "Only admins" in said(answer)
    assert [w.channel_id for w in admin.watched_channels(live.db.factory, team_id=TEAM)] == [
        PUBLIC_CHANNEL
    ]


def test_workspace_admin_from_slack_counts_as_admin(live: Live) -> None:
    live.slack.add_user("UOWNER", "olga", real_name="Olga Owner", is_owner=True)
    live.slack.add_channel("C0OWN", "own", members=["UOWNER", "UBOT"])
    answer = live.command("watch <#C0OWN|own>", user="UOWNER")
    assert "Watching <#C0OWN>" in said(answer)


def test_unknown_channel_gets_a_clear_answer(live: Live) -> None:
    answer = live.command("watch #no-such-channel")
    assert "I can't find the channel #no-such-channel" in said(answer)
    answer = live.command("watch <#C0GHOST|ghost>")
    assert "I can't see <#C0GHOST>" in said(answer)


def test_private_channel_needs_the_bot_in_it(live: Live) -> None:
    live.slack.add_channel("G0NOBOT", "secret-no-bot", is_private=True, members=[ADMIN])
    answer = live.command("watch <#G0NOBOT|secret-no-bot>")
    assert "invite me first" in said(answer).lower()
    answer = live.command(f"watch <#{PRIVATE_CHANNEL}|launch-secret>")
    assert f"Watching <#{PRIVATE_CHANNEL}>" in said(answer)


def test_unwatch_stops_capture_but_keeps_the_library(live: Live) -> None:
    live.post(live.add_jpeg("F0KEEP", seed=31))
    live.wait_for_prompt()
    answer = live.command(f"unwatch <#{PUBLIC_CHANNEL}|marketing-shoots>")
    assert "Stopped watching" in said(answer)
    live.post(live.add_jpeg("F0AFTER", seed=32))
    assert [i.slack_file_id for i in live.stored()] == ["F0KEEP"]


def test_categories_add_rename_and_guarded_remove(live: Live) -> None:
    assert "No categories yet" in said(live.command("categories"))
    live.command("categories add Marketing")
    live.command("categories add Events")
    assert "already exists" in said(live.command("categories add marketing"))
    live.command("categories rename Events to Live events")
    live.post(live.add_jpeg("F0CAT", seed=33))
    live.wait_for_prompt()
    (image,) = live.stored()
    categories = {c.name: c.id for c in admin.list_categories(live.db.factory, team_id=TEAM)}
    with session_scope(live.db.factory) as session:
        row = session.get(Image, image.id)
        assert row is not None
        row.category_id = categories["Marketing"]
    listing = said(live.command("categories", user=MEMBER))
    assert "Live events" in listing
    assert "Marketing* \u2014 1 image" in listing
    refused = said(live.command("categories remove Marketing"))
    assert "has 1 image" in refused
    assert "--move-to" in refused
    moved = said(live.command("categories remove Marketing --move-to Live events"))
    assert "1 image moved to *Live events*" in moved
    assert [c.name for c in admin.list_categories(live.db.factory, team_id=TEAM)] == ["Live events"]
    assert "Only admins can change categories" in said(
        live.command("categories add Sneaky", user=MEMBER)
    )


def test_help_and_unknown_words(live: Live) -> None:
    assert "/images watch" in said(live.command("help", user=MEMBER))
    answer = said(live.command("CMO keynote", user=MEMBER))
    assert "0 images* for `CMO keynote`" in answer


def test_bot_invited_to_an_unwatched_channel_tells_the_inviter(live: Live) -> None:
    live.slack.add_channel("C0NEW", "new-shoots", members=[MEMBER, "UBOT"])
    event = live.slack.event_envelope(
        {
            "type": "member_joined_channel",
            "user": "UBOT",
            "channel": "C0NEW",
            "channel_type": "C",
            "team": TEAM,
            "inviter": MEMBER,
            "event_ts": "1.1",
        }
    )
    assert live.sender.event(event).status == 200
    (call,) = live.slack.wait_for("chat.postEphemeral")
    assert call.params["user"] == MEMBER
    assert "/images watch <#C0NEW>" in call.params["text"]
    watched_event = live.slack.event_envelope(
        {
            "type": "member_joined_channel",
            "user": "UBOT",
            "channel": PUBLIC_CHANNEL,
            "channel_type": "C",
            "team": TEAM,
            "inviter": MEMBER,
            "event_ts": "1.2",
        }
    )
    assert live.sender.event(watched_event).status == 200
    assert len(live.slack.calls_to("chat.postEphemeral")) == 1

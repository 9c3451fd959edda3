"""A channel's privacy is kept true: unknown counts as private, Slack is asked, and a channel
made private (or public) takes its images with it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text

from bot.scheduler import recheck_channels
from storage import migrate
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Channel, Image
from tests import seed
from tests.conftest import MEMBER, POSTER, PUBLIC_CHANNEL, TEAM, FakeClock, app_env, make_services
from tests.e2e.test_search import result_titles, search
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, wait_until


def test_databases_from_before_fail_closed(database_url: str, tmp_path: Path) -> None:
    # An empty database taken to 0003, given a channel and an image the way 0003 left them
    # (public, whatever the channel really was), then upgraded.
    engine = make_engine(database_url)
    migrate.downgrade(engine, "base")
    migrate.upgrade(engine, "0003")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO channels (team_id, channel_id, is_private, created_at) "
                "VALUES ('T1', 'G0SECRET', false, '2026-01-01T00:00:00+00:00')"
            )
        )
    factory = make_session_factory(engine)
    with session_scope(factory) as session:  # the images table is the same at 0003 and now
        session.add(
            Image(
                team_id="T1",
                slack_file_id="F1",
                channel_id="G0SECRET",
                channel_private=False,
                uploader_id="U1",
                sort_at=seed.START,
                created_at=seed.START,
                updated_at=seed.START,
                tags=[],
                tag_keys=[],
                exif={},
            )
        )
    migrate.upgrade(engine)
    with session_scope(factory) as session:
        channel = session.get(Channel, ("T1", "G0SECRET"))
        assert channel is not None and channel.is_private and channel.checked_at is None
        assert session.scalars(select(Image.channel_private)).all() == [True]
    engine.dispose()


def test_the_worker_asks_slack_and_fixes_what_it_finds(
    database_url: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    clock = FakeClock()
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    services = make_services(env, clock=clock)
    slack.add_channel("G0GONE", "deleted-later", is_private=True, members=[POSTER])  # no bot
    for channel in (PUBLIC_CHANNEL, "G0SECRET", "G0GONE"):
        seed.add(services.factory, f"in {channel}", channel=channel, team=TEAM, private=True)
    with session_scope(services.factory) as session:
        session.execute(text("UPDATE channels SET checked_at = NULL"))

    assert recheck_channels(services) == 3
    with session_scope(services.factory) as session:
        rows = {c.channel_id: c for c in session.scalars(select(Channel))}
        private = dict(session.execute(select(Image.channel_id, Image.channel_private)).all())
    assert not rows[PUBLIC_CHANNEL].is_private and not private[PUBLIC_CHANNEL]
    assert rows["G0SECRET"].is_private and private["G0SECRET"]
    # Slack would not say (the bot is not in it): still private, asked again tomorrow.
    assert rows["G0GONE"].is_private and private["G0GONE"]
    assert all(r.checked_at == clock.now for r in rows.values())
    assert recheck_channels(services) == 0
    clock.advance(days=1, minutes=1)
    assert recheck_channels(services) == 3
    services.shutdown()


def test_a_channel_made_private_takes_its_images_with_it(live: Live) -> None:
    live.slack.add_user("UOUTSIDE", "olga")
    live.slack.add_channel("C0LOBBY", "lobby", members=["UOUTSIDE", MEMBER, "UBOT"])
    live.post(live.add_jpeg("F0CONV", seed=7))
    wait_until(live.stored, what="stored")
    assert result_titles(search(live, "f0conv", user="UOUTSIDE", channel="C0LOBBY")) == ["f0conv"]

    def convert(subtype: str, private: bool) -> None:
        members = live.slack.channel_members(PUBLIC_CHANNEL)
        live.slack.add_channel(
            PUBLIC_CHANNEL, "marketing-shoots", is_private=private, members=members
        )
        event = {
            "type": "message",
            "subtype": subtype,
            "user": MEMBER,
            "text": "made this channel *private*.",
            "channel": PUBLIC_CHANNEL,
            "channel_type": "group" if private else "channel",
            "ts": "1730984822.596869",
            "event_ts": "1730984822.596869",
        }
        assert live.sender.event(live.slack.event_envelope(event)).status == 200

    convert("channel_convert_to_private", private=True)
    wait_until(lambda: all(i.channel_private for i in live.stored()), what="private")
    answer = search(live, "f0conv", user="UOUTSIDE", channel="C0LOBBY")
    assert result_titles(answer) == []
    assert result_titles(search(live, "f0conv", user=MEMBER)) == ["f0conv"]  # a member

    convert("channel_convert_to_public", private=False)
    wait_until(lambda: not any(i.channel_private for i in live.stored()), what="public")
    # Olga's cached view of her conversations does not matter: public is for everyone.
    assert result_titles(search(live, "f0conv", user="UOUTSIDE", channel="C0LOBBY")) == ["f0conv"]


def test_a_post_from_a_channel_now_private_takes_its_earlier_images_with_it(live: Live) -> None:
    # The conversion event was missed (the app was down): the next post's channel_type says it.
    live.slack.add_user("UOUTSIDE", "olga")
    live.slack.add_channel("C0LOBBY", "lobby", members=["UOUTSIDE", MEMBER, "UBOT"])
    live.post(live.add_jpeg("F0EARLY", seed=8))
    wait_until(lambda: len(live.stored()) == 1, what="the first image stored")
    assert result_titles(search(live, "f0early", user="UOUTSIDE", channel="C0LOBBY")) == ["f0early"]

    members = live.slack.channel_members(PUBLIC_CHANNEL)
    live.slack.add_channel(PUBLIC_CHANNEL, "marketing-shoots", is_private=True, members=members)
    live.post(live.add_jpeg("F0LATER", seed=9))
    wait_until(lambda: len(live.stored()) == 2, what="the second image stored")

    assert [i.channel_private for i in live.stored()] == [True, True]
    with session_scope(live.db.factory) as session:
        channel = session.get(Channel, (TEAM, PUBLIC_CHANNEL))
        assert channel is not None and channel.is_private
    assert result_titles(search(live, "f0early", user="UOUTSIDE", channel="C0LOBBY")) == []
    assert result_titles(search(live, "f0early", user=MEMBER)) == ["f0early"]


def test_unchecked_channels_are_asked_again_first(database_url: str) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    seed.add(factory, "a", channel="C0A")
    seed.add(factory, "b", channel="C0B")
    with session_scope(factory) as session:
        session.execute(text("UPDATE channels SET checked_at = NULL WHERE channel_id = 'C0B'"))
        session.execute(
            text("UPDATE channels SET checked_at = :t WHERE channel_id = 'C0A'"),
            {"t": seed.START - timedelta(days=3)},
        )
    from bot import channels

    asked: list[str] = []

    def ask(team: str, channel: str) -> bool | None:
        asked.append(channel)
        return False

    assert channels.recheck(factory, ask=ask, now=seed.START, limit=1) == 1
    assert asked == ["C0B"]
    engine.dispose()

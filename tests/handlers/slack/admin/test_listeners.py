"""`/images watch | unwatch | channels | categories | approvers | help`, as an admin and as
anyone else sees the answers (privately, through the command's response_url)."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL
from tests.handlers.slack.harness import Harness, said


def answer_to(h: Harness, text: str, *, user: str = ADMIN) -> str:
    """Everything the private answer to `/images <text>` says."""
    sent = h.command(text, user=user)
    assert sent.status == 200
    assert sent.body == ""  # acknowledged at once; the answer goes to the response_url
    answer = h.answer(sent)
    assert answer["response_type"] == "ephemeral"
    return answer["text"] + said(answer.get("blocks", []))


def test_watch_with_a_category_is_confirmed_and_listed_for_everyone(h: Harness) -> None:
    h.slack.add_channel("C0LAUNCH", "launch", members=[ADMIN, "UBOT"])
    answer_to(h, "categories add Marketing")
    answer = answer_to(h, "watch <#C0LAUNCH|launch> Marketing")
    assert "Watching <#C0LAUNCH>" in answer
    assert "under *Marketing*" in answer
    listing = answer_to(h, "channels", user=MEMBER)
    assert "<#C0LAUNCH> \u2192 Marketing" in listing


def test_watching_starts_capture(h: Harness) -> None:
    h.post(h.add_jpeg("F0BEFORE", seed=1))
    h.settle()
    assert h.ephemerals(POSTER) == []  # not watched: nothing kept, nobody prompted
    answer_to(h, f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>")
    _, prompt = h.post_and_prompt(h.add_jpeg("F0AFTER", seed=2))
    assert "Your image is in the library" in said(prompt.params["blocks"])


def test_unwatch_stops_capture_and_says_so(h: Harness) -> None:
    answer_to(h, f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>")
    answer = answer_to(h, f"unwatch <#{PUBLIC_CHANNEL}|marketing-shoots>")
    assert "Stopped watching <#C0SHOOTS>. Images already in the library stay." in answer
    assert "was not being watched" in answer_to(h, f"unwatch <#{PUBLIC_CHANNEL}|x>")
    assert "No channel is watched yet" in answer_to(h, "channels")
    h.post(h.add_jpeg("F0LATE", seed=3))
    h.settle()
    assert h.calls("files.download") == []


def test_channels_when_none_is_watched_says_how_to_start(h: Harness) -> None:
    assert "`/images watch #channel [category]`" in answer_to(h, "channels", user=MEMBER)


def test_a_channel_name_that_is_not_a_mention_is_explained(h: Harness) -> None:
    answer = answer_to(h, "watch #no-such-channel")
    assert "I can't find the channel #no-such-channel" in answer
    assert "`/images watch #`" in answer


def test_a_channel_the_bot_cannot_see_or_is_not_in_asks_for_an_invite(h: Harness) -> None:
    assert "I can't see <#C0GHOST>" in answer_to(h, "watch <#C0GHOST|ghost>")
    h.slack.add_channel("C0NOBOT", "no-bot", members=[ADMIN])
    answer = answer_to(h, "watch <#C0NOBOT|no-bot>")
    assert "I am not in <#C0NOBOT>" in answer
    assert "/invite @Image Library" in answer
    assert f"Watching <#{PRIVATE_CHANNEL}>" in answer_to(
        h, f"watch <#{PRIVATE_CHANNEL}|launch-secret>"
    )


def test_categories_add_rename_list_and_remove(h: Harness) -> None:
    assert "No categories yet." in answer_to(h, "categories")
    assert "Added the category *Marketing*." in answer_to(h, "categories add Marketing")
    answer_to(h, 'categories add "Live events"')
    assert "already exists" in answer_to(h, "categories add marketing")
    assert "Renamed it to *Launches*." in answer_to(h, "categories rename Live events to Launches")
    listing = answer_to(h, "categories", user=MEMBER)
    assert "*Launches* \u2014 0 images" in listing
    assert "*Marketing* \u2014 0 images" in listing
    assert "Admins:" not in listing  # the how-to line is for admins only
    assert "Admins:" in answer_to(h, "categories")
    assert "Removed *Launches*." in answer_to(h, "categories remove Launches")
    assert "Launches" not in answer_to(h, "categories")


def test_unknown_categories_subcommand_lists_the_known_ones(h: Harness) -> None:
    answer = answer_to(h, "categories explode Marketing")
    assert "`add <name>`" in answer
    assert "`rename <old> to <new>`" in answer
    assert "Say it like this" in answer_to(h, "categories rename Marketing")


def test_approvers_of_a_category(h: Harness) -> None:
    answer_to(h, "categories add Marketing")
    answer = answer_to(h, f"approvers Marketing <@{MEMBER}|max> <@{POSTER}|pat> all")
    assert "*Marketing* will be sent for approval to <@UMEMBER>, <@UPOSTER>" in answer
    assert "every one of them must approve" in answer
    assert "cannot approve (a bot" in answer_to(h, "approvers Marketing <@UOTHERBOT|otherbot>")
    assert "Say it like this" in answer_to(h, "approvers Marketing")


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_help_lists_every_command(h: Harness, text: str) -> None:
    answer = answer_to(h, text, user=MEMBER)
    for command in ("/images watch", "/images unwatch", "/images channels", "/images approvers"):
        assert command in answer
    assert "tag:CMO" in answer


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>", "Only admins can change watched channels"),
        (f"unwatch <#{PUBLIC_CHANNEL}|marketing-shoots>", "Only admins can change watched"),
        ("categories add Sneaky", "Only admins can change categories"),
        ("categories remove Marketing", "Only admins can change categories"),
        (f"approvers Marketing <@{MEMBER}|max>", "Only admins can set approvers"),
    ],
)
def test_non_admins_are_refused_and_nothing_changes(h: Harness, text: str, refusal: str) -> None:
    answer_to(h, "categories add Marketing")
    answer_to(h, f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>")
    answer = answer_to(h, text, user=MEMBER)
    assert refusal in answer
    assert "SLACK_ADMIN_IDS" in answer  # says who can
    assert "<#C0SHOOTS>" in answer_to(h, "channels")
    assert "Marketing" in answer_to(h, "categories")
    assert "Sneaky" not in answer_to(h, "categories")


def test_a_workspace_owner_counts_as_an_admin(h: Harness) -> None:
    h.slack.add_user("UOWNER", "olga", real_name="Olga Owner", is_owner=True)
    h.slack.add_channel("C0OWN", "own", members=["UOWNER", "UBOT"])
    assert "Watching <#C0OWN>" in answer_to(h, "watch <#C0OWN|own>", user="UOWNER")


def test_a_quoted_category_name_is_understood_by_every_command(h: Harness) -> None:
    answer_to(h, 'categories add "Live events"')
    watched = answer_to(h, f'watch <#{PUBLIC_CHANNEL}|marketing-shoots> "Live events"')
    assert "under *Live events*" in watched
    approvers = answer_to(h, f'approvers "Live events" <@{MEMBER}|max>')
    assert "*Live events* will be sent for approval to <@UMEMBER>" in approvers

"""Admin: the answers to `/images help | watch | unwatch | channels | categories |
approvers` (routed here by handlers.slack.command)."""

from __future__ import annotations

import re
import shlex

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import admin
from bot.services import Services
from handlers.slack.admin.views import categories_blocks, channels_blocks, help_blocks
from handlers.slack.blocks import Block, escape, section

CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")


class Refused(Exception):
    """The request cannot be done here; the message (mrkdwn) says what to do instead."""


def admin_answer(
    services: Services, client: WebClient, word: str, rest: str, *, team_id: str, user_id: str
) -> tuple[str, list[Block]] | None:
    """The answer to `/images <word> <rest>` when `word` is an admin word (help too), else
    None: then the words are a search."""
    try:
        if word in ("", "help"):
            return help_blocks()
        if word in ("watch", "unwatch"):
            return _watching(services, client, word, rest, team_id=team_id, user_id=user_id)
        if word == "channels":
            return channels_blocks(admin.watched_channels(services.factory, team_id=team_id))
        if word == "categories":
            return _categories(services, rest, team_id=team_id, user_id=user_id)
        if word == "approvers":
            return _approvers(services, rest, team_id=team_id, user_id=user_id)
    except Refused as exc:
        return str(exc), [section(f":warning: {exc}")]
    except admin.AdminError as exc:  # the library's words: plain text
        return str(exc), [section(f":warning: {escape(str(exc))}")]
    return None


def _require_admin(services: Services, *, team_id: str, user_id: str, what: str) -> None:
    if not services.people.is_admin(team_id, user_id):
        raise Refused(
            f"Only admins can {what}. Ask a workspace admin, or someone listed in SLACK_ADMIN_IDS."
        )


def _watching(
    services: Services, client: WebClient, word: str, rest: str, *, team_id: str, user_id: str
) -> tuple[str, list[Block]]:
    _require_admin(services, team_id=team_id, user_id=user_id, what="change watched channels")
    parts = rest.split(" ", 1)
    match = CHANNEL_REF.match(parts[0]) if parts[0] else None
    if match is None:
        shown = escape(parts[0]) if parts[0] else "nothing"
        raise Refused(
            f"I can't find the channel {shown}. Pick it from the list as you type "
            f"`/images {word} #`."
        )
    channel_id = match.group(1)
    now = services.clock()
    if word == "unwatch":
        if admin.unwatch(
            services.factory, team_id=team_id, channel_id=channel_id, actor_id=user_id, now=now
        ):
            text = f"Stopped watching <#{channel_id}>. Images already in the library stay."
        else:
            text = f"<#{channel_id}> was not being watched."
        return text, [section(text)]
    _check_bot_can_read(client, channel_id)
    category = _unquote(parts[1]).lstrip("#") if len(parts) > 1 and parts[1].strip() else None
    watched = admin.watch(
        services.factory,
        team_id=team_id,
        channel_id=channel_id,
        category_name=category,
        actor_id=user_id,
        now=now,
    )
    text = f":white_check_mark: Watching <#{channel_id}>: images posted there go to the library"
    if watched.category:
        text += f" under *{escape(watched.category)}*"
    return text + ".", [section(text + ".")]


def _check_bot_can_read(client: WebClient, channel_id: str) -> None:
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        if exc.response.get("error") == "channel_not_found":
            raise Refused(
                f"I can't see <#{channel_id}>. If it is a private channel, invite me first: "
                "`/invite @Image Library`."
            ) from None
        raise
    if not info.get("is_member"):
        # Slack only sends a channel's messages to apps that are in it, public or private.
        kind = "private" if info.get("is_private") else "a channel"
        raise Refused(
            f"I am not in <#{channel_id}> ({kind}), so I would not see its images. Invite me "
            "first with `/invite @Image Library`, then watch it."
        )


def _categories(
    services: Services, rest: str, *, team_id: str, user_id: str
) -> tuple[str, list[Block]]:
    action, _, args = rest.partition(" ")
    action = action.lower()
    now = services.clock()
    if action in ("", "list"):
        # Counts of the images this person may see, as search would find them.
        viewer = services.people.viewer(team_id, user_id)
        return categories_blocks(
            admin.list_categories(services.factory, team_id=team_id, viewer=viewer),
            is_admin=services.people.is_admin(team_id, user_id),
        )
    _require_admin(services, team_id=team_id, user_id=user_id, what="change categories")
    if action == "add":
        name = admin.add_category(
            services.factory, team_id=team_id, name=_unquote(args), actor_id=user_id, now=now
        )
        text = f"Added the category *{escape(name)}*."
    elif action == "rename":
        old, sep, new = args.partition(" to ")
        if not sep:
            raise Refused("Say it like this: `/images categories rename Old name to New name`.")
        name = admin.rename_category(
            services.factory,
            team_id=team_id,
            old=_unquote(old),
            new=_unquote(new),
            actor_id=user_id,
            now=now,
        )
        text = f"Renamed it to *{escape(name)}*."
    elif action == "remove":
        name, sep, target = args.partition("--move-to")
        moved = admin.remove_category(
            services.factory,
            team_id=team_id,
            name=_unquote(name),
            move_to=_unquote(target) if sep else None,
            actor_id=user_id,
            now=now,
        )
        text = f"Removed *{escape(_unquote(name))}*."
        if sep:
            plural = "s" if moved != 1 else ""
            text += f" {moved} image{plural} moved to *{escape(_unquote(target))}*."
    else:
        raise Refused(
            "I know `/images categories`, `add <name>`, `rename <old> to <new>` and "
            "`remove <name> [--move-to <other>]`."
        )
    return text, [section(text)]


USER_REF = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _approvers(
    services: Services, rest: str, *, team_id: str, user_id: str
) -> tuple[str, list[Block]]:
    """`/images approvers <category> @ana @ben [any|all]`."""
    _require_admin(services, team_id=team_id, user_id=user_id, what="set approvers")
    people = USER_REF.findall(rest)
    words = USER_REF.sub(" ", rest).split()
    policy = "any"
    if words and words[-1].lower() in ("any", "all"):
        policy = words.pop().lower()
    if not words or not people:
        raise Refused("Say it like this: `/images approvers Marketing @ana @ben [any|all]`.")
    for person in people:
        facts = services.people.facts(team_id, person)
        if facts.is_bot or facts.deleted:
            raise Refused(f"<@{person}> cannot approve (a bot, or no longer here).")
    info = admin.set_approvers(
        services.factory,
        team_id=team_id,
        category=_unquote(" ".join(words)),
        approvers=people,
        policy=policy,
        actor_id=user_id,
        now=services.clock(),
    )
    who = ", ".join(f"<@{p}>" for p in info.default_approvers)
    rule = "every one of them must approve" if policy == "all" else "the first decision counts"
    text = f"Images in *{escape(info.name)}* will be sent for approval to {who} ({rule})."
    return text, [section(text)]


def _unquote(text: str) -> str:
    text = text.strip()
    try:
        parts = shlex.split(text)
    except ValueError:
        return text.strip("\"'")
    return " ".join(parts)

"""Block Kit builders: pure functions, plain data in, dicts out.

Every piece of user text goes through `escape` (mrkdwn) or `plain` (plain_text, trimmed to
Slack's limits) so a tag named `<!channel>` stays text and never pings anyone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot import ids
from bot.admin import CategoryInfo, Watched
from bot.approvals import RequestView
from bot.details import MAX_DESCRIPTION_LENGTH, MAX_TAG_LENGTH, MAX_TITLE_LENGTH
from bot.finder import Result, ResultPage
from bot.mrkdwn import escape
from bot.prompts import ImageNote, Preview, PromptPlan
from storage.search import COUNT_CAP

Block = dict[str, Any]

MAX_TITLES_IN_MODAL = 20  # keeps a many-image modal well under Slack's 100 blocks


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object, never empty, never over `limit` characters."""
    text = text.strip() or "\u2014"
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str, limit: int = 3000) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return {"type": "mrkdwn", "text": text or " "}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text, 2000)]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def image_block(preview: Preview) -> Block | None:
    """An image block, or None when there is nothing Slack could load."""
    alt = preview.alt[:2000] or "image"
    if preview.image_url:
        return {"type": "image", "image_url": preview.image_url, "alt_text": alt}
    if preview.slack_file_id:
        return {"type": "image", "slack_file": {"id": preview.slack_file_id}, "alt_text": alt}
    return None


def tag_line(tags: Sequence[str]) -> str:
    return " \u00b7 ".join(escape(t) for t in tags) if tags else "no tags"


# -- the prompt after posting ------------------------------------------------------------


def prompt_blocks(plan: PromptPlan) -> tuple[str, list[Block]]:
    """The private message a poster gets once their message's images are settled."""
    stored, failed = plan.stored, plan.failed
    blocks: list[Block] = []
    if stored:
        count = len(stored)
        noun = "image is" if count == 1 else f"{count} images are"
        blocks.append(section(f":frame_with_picture: Your {noun} in the library."))
        for note in stored[:10]:
            blocks.extend(_duplicate_blocks(note))
        missing = plan.needing_details
        if missing:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": "prompt_actions",
                    "elements": [
                        button(
                            "Add details",
                            ids.ADD_DETAILS,
                            ",".join(str(n.image_id) for n in missing),
                            style="primary",
                        )
                    ],
                }
            )
            blocks.append(
                context("A title, tags, a category and the shoot date make them easy to find.")
            )
    if failed:
        lines = [
            f"\u2022 *{escape(n.file_name or n.slack_file_id)}*: {escape(n.reason or 'unknown')}"
            for n in failed[:20]
        ]
        noun = "file was" if len(failed) == 1 else f"{len(failed)} files were"
        blocks.append(section(f":warning: This {noun} not kept:\n" + "\n".join(lines)))
    text = f"{len(stored)} image(s) saved to the library" + (
        f", {len(failed)} not kept" if failed else ""
    )
    return text, blocks


def _duplicate_blocks(note: ImageNote) -> list[Block]:
    duplicate = note.duplicate
    if duplicate is None:
        return []
    kind = "the very same file as" if duplicate.exact else "almost the same picture as"
    when = duplicate.created_at.date().isoformat()
    return [
        section(
            f":mag: *{escape(note.title or note.file_name)}* looks like {kind} "
            f"*{escape(duplicate.title or 'an untitled image')}*, "
            f"posted by <@{duplicate.uploader_id}> on {when}."
        ),
        {
            "type": "actions",
            "block_id": f"duplicate:{note.image_id}",
            "elements": [
                button("Keep both", ids.KEEP_DUPLICATE, str(note.image_id)),
                button(
                    "Discard the new one",
                    ids.DISCARD_DUPLICATE,
                    str(note.image_id),
                    style="danger",
                ),
            ],
        },
    ]


# -- the details modal -------------------------------------------------------------------


@dataclass(frozen=True)
class ModalImage:
    image_id: int
    file_name: str
    title: str


@dataclass(frozen=True)
class DetailsPrefill:
    tags: Sequence[str] = ()
    category: tuple[int, str] | None = None  # (id, name)
    shoot_date: date | None = None
    description: str = ""
    approvers: Sequence[str] = ()


def details_modal(
    *,
    images: Sequence[ModalImage],
    has_categories: bool,
    prefill: DetailsPrefill,
    metadata: dict[str, Any],
    previews: Sequence[Preview] = (),
) -> Block:
    """The modal a poster fills in: one title per image, shared tags, category, date,
    description and approvers."""
    blocks: list[Block] = []
    for preview in previews[:3]:
        block = image_block(preview)
        if block:
            blocks.append(block)
    several = len(images) > 1
    for image in images[:MAX_TITLES_IN_MODAL]:
        label = f"Title of {image.file_name}" if several else "Title"
        blocks.append(
            {
                "type": "input",
                "block_id": f"{ids.TITLE_BLOCK}:{image.image_id}",
                "label": plain(label, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "initial_value": image.title[:MAX_TITLE_LENGTH],
                    "max_length": MAX_TITLE_LENGTH,
                },
            }
        )
    tags_element: Block = {
        "type": "multi_external_select",
        "action_id": ids.TAGS,
        "placeholder": plain("Type to find or add tags", 150),
        "min_query_length": 1,
    }
    if prefill.tags:
        tags_element["initial_options"] = [tag_option(t) for t in prefill.tags[:100]]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.TAGS_BLOCK,
            "optional": True,
            "label": plain("Tags" + (" (for all of them)" if several else ""), 2000),
            "hint": plain("People, products, places, campaigns. Up to 20.", 2000),
            "element": tags_element,
        }
    )
    if has_categories:
        # Searched as one types (any number of categories), not a static list of at most 100
        # that would drop the image's own category when it is not among them.
        category_element: Block = {
            "type": "external_select",
            "action_id": ids.CATEGORY,
            "placeholder": plain("Pick a category", 150),
            "min_query_length": 0,
        }
        if prefill.category is not None:
            category_element["initial_option"] = category_option(*prefill.category)
        blocks.append(
            {
                "type": "input",
                "block_id": ids.CATEGORY_BLOCK,
                "optional": True,
                "label": plain("Category", 2000),
                "element": category_element,
            }
        )
    else:
        blocks.append(
            context(
                "No categories yet. An admin can add one with `/images categories add Marketing`."
            )
        )
    date_element: Block = {"type": "datepicker", "action_id": "value"}
    if prefill.shoot_date:
        date_element["initial_date"] = prefill.shoot_date.isoformat()
    blocks.append(
        {
            "type": "input",
            "block_id": ids.SHOOT_DATE_BLOCK,
            "optional": True,
            "label": plain("Shoot date", 2000),
            "hint": plain("From the camera's EXIF data when it had one.", 2000),
            "element": date_element,
        }
    )
    description: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": MAX_DESCRIPTION_LENGTH,
    }
    if prefill.description:
        description["initial_value"] = prefill.description[:MAX_DESCRIPTION_LENGTH]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.DESCRIPTION_BLOCK,
            "optional": True,
            "label": plain("Description", 2000),
            "element": description,
        }
    )
    approvers: Block = {"type": "multi_users_select", "action_id": "value"}
    if prefill.approvers:
        approvers["initial_users"] = list(prefill.approvers)[:100]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.APPROVERS_BLOCK,
            "optional": True,
            "label": plain("Send for approval to", 2000),
            "element": approvers,
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.DETAILS_MODAL,
        "title": plain("Image details", 24),
        "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata, separators=(",", ":"))[:3000],
        "blocks": blocks[:100],
    }


def category_option(category_id: int, name: str) -> Block:
    return {"text": plain(name, 75), "value": str(category_id)}


def category_options(categories: Sequence[tuple[int, str]]) -> list[Block]:
    return [category_option(c, n) for c, n in categories[:100]]


def tag_option(tag: str, *, new: bool = False) -> Block:
    text = f"{tag} (new tag)" if new else tag
    return {"text": plain(text, 75), "value": tag[:150]}


def tag_options(suggestions: Sequence[str], *, typed: str) -> list[Block]:
    """Autocomplete answer: the typed text first when it is not a known tag, then matches."""
    options: list[Block] = []
    typed_clean = " ".join(typed.split())
    known = {s.casefold() for s in suggestions}
    if typed_clean and typed_clean.casefold() not in known:
        options.append(tag_option(typed_clean[: MAX_TAG_LENGTH * 3], new=True))
    options.extend(tag_option(s) for s in suggestions)
    return options[:100]


def message_modal(title: str, text: str) -> Block:
    """A modal that only says something (and can be closed)."""
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }


# -- after saving ------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    titles: Sequence[str]
    tags: Sequence[str]
    category: str | None
    shoot_date: date | None
    approvers: Sequence[str]
    previews: Sequence[Preview] = ()


def summary_blocks(summary: Summary) -> tuple[str, list[Block]]:
    """What replaces the prompt once details are saved."""
    blocks: list[Block] = []
    for preview in summary.previews[:5]:
        block = image_block(preview)
        if block:
            blocks.append(block)
    titles = ", ".join(f"*{escape(t)}*" for t in summary.titles[:10])
    if len(summary.titles) > 10:
        titles += f" and {len(summary.titles) - 10} more"
    fields = [
        mrkdwn(f"*Tags*\n{tag_line(summary.tags)}", 2000),
        mrkdwn(f"*Category*\n{escape(summary.category) if summary.category else 'none'}", 2000),
        mrkdwn(
            f"*Shoot date*\n{summary.shoot_date.isoformat() if summary.shoot_date else 'unknown'}",
            2000,
        ),
    ]
    if summary.approvers:
        people = ", ".join(f"<@{a}>" for a in summary.approvers[:20])
        fields.append(mrkdwn(f"*Approval requested from*\n{people}", 2000))
    blocks.append(section(f":white_check_mark: Saved {titles}"))
    blocks.append({"type": "section", "fields": fields})
    return f"Saved details of {len(summary.titles)} image(s)", blocks


# -- admin answers -----------------------------------------------------------------------


def channels_blocks(watched: Sequence[Watched]) -> tuple[str, list[Block]]:
    if not watched:
        text = (
            "No channel is watched yet. An admin can start with "
            "`/images watch #channel [category]`."
        )
        return text, [section(text)]
    lines = [
        f"\u2022 <#{w.channel_id}>" + (f" \u2192 {escape(w.category)}" if w.category else "")
        for w in watched[:100]
    ]
    return "Watched channels", [section("*Watched channels*\n" + "\n".join(lines))]


def categories_blocks(
    categories: Sequence[CategoryInfo], *, is_admin: bool
) -> tuple[str, list[Block]]:
    if categories:
        lines = [
            f"\u2022 *{escape(c.name)}* \u2014 {c.images} image{'s' if c.images != 1 else ''}"
            for c in categories[:100]
        ]
        body = "*Categories*\n" + "\n".join(lines)
    else:
        body = "No categories yet."
    blocks = [section(body)]
    if is_admin:
        blocks.append(
            context(
                "Admins: `/images categories add <name>` \u00b7 "
                "`/images categories rename <old> to <new>` \u00b7 "
                "`/images categories remove <name> [--move-to <other>]`"
            )
        )
    return "Categories", blocks


# -- App Home ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeImage:
    image_id: int
    title: str
    tags: Sequence[str]
    status: str
    created: date
    has_details: bool
    preview: Preview | None = None


@dataclass(frozen=True)
class HomeRequest:
    request: RequestView
    title: str


def home_view(
    *,
    missing: Sequence[HomeImage],
    recent: Sequence[HomeImage],
    waiting: Sequence[HomeRequest] = (),
    requests: Sequence[HomeRequest] = (),
) -> Block:
    blocks: list[Block] = [
        {"type": "header", "text": plain("Image library", 150)},
        section(
            "Search everything with `/images <words>`, e.g. `/images CMO tag:launch`. "
            "`/images help` lists all commands."
        ),
    ]
    if waiting:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain("Waiting for your approval", 150)})
        for item in waiting[:8]:
            blocks.append(
                section(
                    f"*{escape(item.title or 'untitled')}* \u00b7 asked by "
                    f"<@{item.request.requested_by}>"
                )
            )
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"home_approval:{item.request.id}",
                    "elements": [
                        button("Approve", ids.APPROVE, str(item.request.id), style="primary"),
                        button("Reject", ids.REJECT, str(item.request.id), style="danger"),
                    ],
                }
            )
    if requests:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain("My requests", 150)})
        for item in requests[:8]:
            row: Block = section(
                f"*{escape(item.title or 'untitled')}*\n{approval_status(item.request)}"
            )
            if item.request.state == "open":
                row["accessory"] = button("Cancel", ids.CANCEL_REQUEST, str(item.request.id))
            blocks.append(row)
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": plain("Still missing details", 150)},
    ]
    if missing:
        for item in missing[:15]:
            blocks.append(
                _home_row(
                    item,
                    button("Add details", ids.ADD_DETAILS, str(item.image_id), style="primary"),
                )
            )
    else:
        blocks.append(context("Nothing: all your images have their details. :tada:"))
    blocks.append({"type": "divider"})
    blocks.append({"type": "header", "text": plain("My recent uploads", 150)})
    if recent:
        for item in recent[:20]:
            blocks.append(
                _home_row(item, button("Edit details", ids.EDIT_DETAILS, str(item.image_id)))
            )
    else:
        blocks.append(context("No uploads yet. Post images in a watched channel to add them."))
    return {"type": "home", "blocks": blocks[:100]}


def _home_row(item: HomeImage, action: Block) -> Block:
    title = escape(item.title or "untitled")
    text = (
        f"*{title}*\n{tag_line(item.tags)}\n{item.created.isoformat()} \u00b7 {escape(item.status)}"
    )
    return {"type": "section", "text": mrkdwn(text), "accessory": action}


def help_blocks() -> tuple[str, list[Block]]:
    text = (
        "*Search*\n"
        "`/images CMO keynote` (or `/images search ...`): every word must match a title, tag, "
        "description, category or the poster's name.\n"
        '\u2022 `"launch party"` a phrase \u00b7 `-draft` without a word\n'
        "\u2022 `tag:CMO` \u00b7 `category:Marketing` or `#Marketing` \u00b7 `by:@ana` \u00b7 "
        "`in:#marketing-shoots`\n"
        "\u2022 `date:2026-11` \u00b7 `date:2026-11-03` \u00b7 `after:2026-01-01` \u00b7 "
        "`before:2026-12-31`\n"
        "\u2022 `status:approved` (also pending, draft; rejected and archived only when asked)\n\n"
        "*Image library commands*\n"
        "\u2022 `/images watch #channel [category]` \u2014 keep images posted there (admins)\n"
        "\u2022 `/images unwatch #channel` \u2014 stop (admins)\n"
        "\u2022 `/images channels` \u2014 which channels are watched\n"
        "\u2022 `/images categories` \u2014 list; admins: `add`, `rename <old> to <new>`, "
        "`remove <name> [--move-to <other>]`\n"
        "\u2022 `/images approvers <category> @ana @ben [any|all]` \u2014 who approves a "
        "category's images (admins)\n"
        "\u2022 `/images help` \u2014 this list\n"
        "Post images in a watched channel, or use the *Add to image library* message "
        "shortcut on any message with images, then add their details."
    )
    return "Image library commands", [section(text)]


# -- search results ----------------------------------------------------------------------

STATUS_LABELS = {
    "approved": ":white_check_mark: approved",
    "pending": ":hourglass_flowing_sand: pending approval",
    "rejected": ":no_entry: rejected",
    "draft": ":pencil2: draft",
    "archived": ":file_cabinet: archived",
}


def search_blocks(
    page: ResultPage, *, state: dict[str, Any], with_images: bool = True
) -> tuple[str, list[Block]]:
    """The private answer to a search: a header with the count and the query as understood,
    up to five results with previews and actions, and Newer / Older paging."""
    understood = escape(page.query.describe()) or "everything"
    count = f"{COUNT_CAP:,}+" if page.total > COUNT_CAP else f"{page.total:,}"
    noun = "image" if page.total == 1 else "images"
    blocks: list[Block] = [section(f"*{count} {noun}* for `{understood}`")]
    notes = [escape(p) for p in page.query.problems]
    notes += [
        f"No tag \u201c{escape(typed)}\u201d: showing *{escape(used)}*."
        for typed, used in page.corrected_tags.items()
    ]
    if notes:
        blocks.append(context("\n".join(notes)))
    if not page.results:
        hint = "Nothing found."
        if page.suggestions:
            hint += (
                " Did you mean "
                + ", ".join(
                    f"`tag:{escape(s) if ' ' not in s else chr(34) + escape(s) + chr(34)}`"
                    for s in page.suggestions
                )
                + "?"
            )
        blocks.append(section(hint + " `/images help` shows how to search."))
        return f"No images for {escape(page.query.describe())}", blocks
    for result in page.results:
        image = image_block(result.preview) if with_images else None
        if image is not None:
            blocks.append(image)
        blocks.append(section(_result_text(result, with_link=image is None)))
        actions = [button("Share to channel", ids.SHARE_IMAGE, str(result.image_id))]
        if result.original_url:
            actions.append(
                {
                    "type": "button",
                    "text": plain("Open original", 75),
                    "action_id": ids.OPEN_ORIGINAL,
                    "url": result.original_url[:3000],
                    "value": str(result.image_id),
                }
            )
        if result.can_edit:
            actions.append(button("Edit details", ids.EDIT_DETAILS, str(result.image_id)))
        actions.append(button("Request approval", ids.REQUEST_APPROVAL, str(result.image_id)))
        actions.append(button("History", ids.SHOW_HISTORY, str(result.image_id)))
        blocks.append({"type": "actions", "elements": actions})
    paging = []
    if page.newer:
        paging.append(
            button("\u2190 Newer", ids.SEARCH_NEWER, _page_value(state, page.newer.encode()))
        )
    if page.older:
        paging.append(
            button("Older \u2192", ids.SEARCH_OLDER, _page_value(state, page.older.encode()))
        )
    if paging:
        blocks.append({"type": "actions", "block_id": "search_paging", "elements": paging})
    return f"{count} {noun} for {escape(page.query.describe())}", blocks


def _result_text(result: Result, *, with_link: bool) -> str:
    title = escape(result.title or "untitled")
    if with_link and result.original_url:
        title = f"<{result.original_url}|{title}>"
    lines = [
        f"*{title}*",
        tag_line(result.tags),
        " \u00b7 ".join(
            part
            for part in (
                escape(result.category) if result.category else None,
                result.shoot_date,
                f"by <@{result.uploader_id}>",
                STATUS_LABELS.get(result.status, escape(result.status)),
            )
            if part
        ),
    ]
    return "\n".join(lines)


def _page_value(state: dict[str, Any], cursor: str) -> str:
    """A paging button carries the query and where to continue: no server-side session."""
    value = dict(state, cursor=cursor)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    while len(text) > 2000 and value.get("q"):
        value["q"] = value["q"][: len(value["q"]) - (len(text) - 2000) - 1]
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text


def shared_blocks(
    *,
    title: str,
    preview: Preview,
    sharer: str,
    uploader: str,
    channel_id: str,
    original_url: str | None,
) -> tuple[str, list[Block]]:
    blocks: list[Block] = []
    image = image_block(preview)
    if image is not None:
        blocks.append(image)
    name = escape(title or "an image")
    if image is None and original_url:
        name = f"<{original_url}|{name}>"
    blocks.append(
        context(
            f"*{name}* \u00b7 shared by <@{sharer}> from the image library \u00b7 "
            f"posted by <@{uploader}> in <#{channel_id}>"
        )
    )
    return f"{escape(title)} (shared from the image library)", blocks


# -- approvals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CardImage:
    title: str
    tags: Sequence[str]
    category: str | None
    shoot_date: str | None
    preview: Preview | None
    original_url: str | None


def approval_card(request: RequestView, image: CardImage) -> tuple[str, list[Block]]:
    """An approver's DM card. Open: Approve / Reject / Open original. Settled: the truth,
    and no buttons."""
    blocks: list[Block] = []
    picture = image_block(image.preview) if image.preview else None
    if picture:
        blocks.append(picture)
    asked = f"<@{request.requested_by}> asks for your approval"
    if request.note:
        asked += f": \u201c{escape(request.note)}\u201d"
    facts = [
        f"*{escape(image.title or 'untitled')}*",
        tag_line(image.tags),
        " \u00b7 ".join(p for p in (escape(image.category or ""), image.shoot_date or "") if p),
    ]
    blocks.append(section("\n".join(f for f in facts if f)))
    blocks.append(
        context(
            asked + (f" \u00b7 due {request.due_at.date().isoformat()}" if request.due_at else "")
        )
    )
    status = approval_status(request)
    if request.state == "open":
        if request.policy == "all" and request.approved_by:
            blocks.append(context(status))
        elements = [
            button("Approve", ids.APPROVE, str(request.id), style="primary"),
            button("Reject", ids.REJECT, str(request.id), style="danger"),
        ]
        if image.original_url:
            elements.append(
                {
                    "type": "button",
                    "text": plain("Open original", 75),
                    "action_id": ids.OPEN_ORIGINAL,
                    "url": image.original_url[:3000],
                    "value": str(request.image_id),
                }
            )
        blocks.append(
            {"type": "actions", "block_id": f"approval:{request.id}", "elements": elements}
        )
    else:
        blocks.append(section(status))
    return f"Approval request: {escape(image.title or 'an image')}", blocks


def approval_status(request: RequestView) -> str:
    """One line of truth about a request, the same on every card and thread."""
    when = request.decided_at.strftime("%Y-%m-%d %H:%M UTC") if request.decided_at else ""
    if request.state == "approved":
        people = ", ".join(f"<@{a}>" for a in request.approved_by) or "an admin"
        return f":white_check_mark: Approved by {people} at {when}"
    if request.state == "rejected":
        rejection = request.rejection
        who = f"<@{rejection.approver_id}>" if rejection else "an approver"
        reason = f": {escape(rejection.reason)}" if rejection and rejection.reason else ""
        return f":no_entry: Rejected by {who}{reason}"
    if request.state == "cancelled":
        return f":heavy_multiplication_x: Request cancelled {when}".rstrip()
    waiting = [a for a in request.approvers if a not in request.approved_by]
    if request.policy == "all" and request.approved_by:
        done = ", ".join(f"<@{a}>" for a in request.approved_by)
        rest = ", ".join(f"<@{a}>" for a in waiting)
        return f"Approved so far by {done}; waiting for {rest}"
    return ":hourglass_flowing_sand: Waiting for " + ", ".join(f"<@{a}>" for a in waiting)


def reject_modal(request_id: int, metadata: dict[str, Any]) -> Block:
    return {
        "type": "modal",
        "callback_id": ids.REJECT_MODAL,
        "title": plain("Reject image", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(dict(metadata, request=request_id))[:3000],
        "blocks": [
            {
                "type": "input",
                "block_id": ids.REASON_BLOCK,
                "label": plain("Why is it rejected?", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }


def request_modal(image_id: int, *, title: str, approvers: Sequence[str]) -> Block:
    approvers_element: Block = {"type": "multi_users_select", "action_id": "value"}
    if approvers:
        approvers_element["initial_users"] = list(approvers)[:100]
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_MODAL,
        "title": plain("Request approval", 24),
        "submit": plain("Send", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"image": image_id}),
        "blocks": [
            section(f"*{escape(title or 'untitled')}*"),
            {
                "type": "input",
                "block_id": ids.APPROVERS_BLOCK,
                "label": plain("Approvers", 2000),
                "element": approvers_element,
            },
            {
                "type": "input",
                "block_id": ids.NOTE_BLOCK,
                "optional": True,
                "label": plain("Note", 2000),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 1000},
            },
            {
                "type": "input",
                "block_id": ids.DUE_BLOCK,
                "optional": True,
                "label": plain("Due date", 2000),
                "element": {"type": "datepicker", "action_id": "value"},
            },
        ],
    }


def history_blocks(
    title: str, events: Sequence[tuple[str, str, str, str]]
) -> tuple[str, list[Block]]:
    """(when, actor id, action, detail) rows: who uploaded, edited, asked, decided."""
    lines = [
        f"\u2022 {when} \u2014 <@{actor}> {escape(action.replace('_', ' '))}"
        + (f" ({escape(detail)})" if detail else "")
        for when, actor, action, detail in events[-40:]
    ]
    body = f"*History of {escape(title or 'untitled')}*\n" + ("\n".join(lines) or "Nothing yet.")
    return f"History of {escape(title)}", [section(body)]

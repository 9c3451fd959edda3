"""Block Kit builders against Slack's limits (the emulator's validator is Slack's table)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.admin import CategoryInfo, Watched
from bot.details_form import DetailsPrefill, ModalImage
from bot.duplicates import Duplicate
from bot.finder import Result, ResultPage
from bot.home import HomeImage
from bot.previews import Preview
from bot.prompts import ImageNote, PromptPlan
from handlers.slack.admin.views import categories_blocks, channels_blocks
from handlers.slack.blocks import escape
from handlers.slack.capture.views import prompt_blocks
from handlers.slack.details.views import details_modal
from handlers.slack.home.views import home_view
from handlers.slack.search.views import search_blocks
from storage.search import Cursor, parse
from tests.fakes.slack_api import validate_blocks, validate_view

LONG = "x" * 5000
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_escape_neutralises_mentions_and_links() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_prompt_with_many_images_duplicates_and_failures_fits() -> None:
    notes = [
        ImageNote(
            image_id=n,
            slack_file_id=f"F{n}",
            file_name=LONG,
            title=LONG,
            stored=n < 30,
            reason=LONG,
            duplicate=Duplicate(n + 100, LONG, "U1", NOW, exact=False, distance=2),
        )
        for n in range(60)
    ]
    plan = PromptPlan("T", "C", "1.2", "U", None, notes)
    text, body = prompt_blocks(plan)
    assert validate_blocks(body, surface="message", reject_private_image_urls=False) == []
    assert text


def test_details_modal_for_many_images_fits() -> None:
    images = [ModalImage(n, LONG, LONG) for n in range(40)]
    view = details_modal(
        images=images,
        has_categories=True,
        prefill=DetailsPrefill(
            tags=[LONG] * 30,
            category=(150, LONG),
            shoot_date=date(2026, 1, 1),
            description=LONG,
            approvers=["U1"] * 5,
        ),
        metadata={"images": list(range(40)), "response_url": "https://hooks.slack.com/" + LONG},
        previews=[Preview(alt=LONG, slack_file_id="F1")] * 5,
    )
    assert validate_view(view, reject_private_image_urls=False) == []


def test_search_answer_fits_with_long_text_and_paging() -> None:
    result = Result(
        image_id=1,
        title=LONG,
        tags=[LONG] * 20,
        category=LONG,
        shoot_date="2026-11-01",
        uploader_id="U1",
        status="approved",
        preview=Preview(alt=LONG, image_url="https://x.test/a.jpg"),
        original_url="https://x.test/" + LONG,
        can_edit=True,
    )
    page = ResultPage(
        query=parse("CMO " + LONG),
        results=[result] * 5,
        total=5000,
        newer=Cursor(NOW, 1, backwards=True),
        older=Cursor(NOW, 2),
        corrected_tags={LONG: LONG},
        suggestions=[],
    )
    _, body = search_blocks(page, state={"q": "CMO " + LONG})
    assert validate_blocks(body, surface="message", reject_private_image_urls=False) == []
    assert "100+" in body[0]["text"]["text"]


def test_home_and_admin_answers_fit() -> None:
    item = HomeImage(1, LONG, [LONG] * 20, "draft", date(2026, 1, 1), False)
    view = home_view(missing=[item] * 40, recent=[item] * 40)
    assert validate_view(view, reject_private_image_urls=False) == []
    _, body = channels_blocks([Watched("C1", LONG, "U1")] * 200)
    assert validate_blocks(body, surface="message") == []
    _, body = categories_blocks([CategoryInfo(1, LONG, 3, [], "any")] * 200, is_admin=True)
    assert validate_blocks(body, surface="message") == []

"""Every message and view that shows pictures still reaches the person when Slack cannot
load them (here: links to a loopback address, which Slack refuses with "downloading image
failed"): it is sent again without the pictures, never lost."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.slack.approvals import ids as approvals_ids
from handlers.slack.details import ids as details_ids
from tests.conftest import MEMBER, POSTER, PUBLIC_CHANNEL, AppProcess, app_env, make_services
from tests.fakes.slack_api import Call, SlackEmulator
from tests.live import Live, RealClock, form_values, wait_until


@pytest.fixture
def unreachable_previews(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[Live]:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['PORT']}"  # Slack cannot reach it
    db = make_services(env, clock=RealClock(), watch=True)
    yield Live(app=run_app(env), slack=slack, db=db, env=env)
    db.shutdown()


def pictures(payload: dict[str, Any]) -> bool:
    return '"type": "image"' in json.dumps(payload.get("blocks") or payload.get("view") or {})


def delivered(live: Live, method: str) -> Call:
    """The newest call of `method` that Slack accepted."""
    return wait_until(
        lambda: [c for c in live.slack.calls_to(method) if c.response and c.response.get("ok")],
        what=f"{method} accepted",
    )[-1]


def refused_then_sent(live: Live, method: str, *, to: str | None = None) -> Call:
    """A call with pictures that Slack refused, then the same without pictures, accepted."""

    def found() -> Call | None:
        calls = [c for c in live.slack.calls_to(method) if to in (None, c.params.get("channel"))]
        refused = [
            c for c in calls if c.response and not c.response.get("ok") and pictures(c.params)
        ]
        sent = [c for c in calls if c.response and c.response.get("ok") and not pictures(c.params)]
        return sent[-1] if refused and sent else None

    return wait_until(found, what=f"{method} sent without pictures")


def nothing_lost(live: Live) -> None:
    """Every call Slack refused for its pictures was followed by one it accepted."""
    for n, call in enumerate(live.slack.calls):
        if call.response and not call.response.get("ok") and pictures(call.params):
            later = live.slack.calls[n + 1 :]
            assert any(
                c.method == call.method and c.response.get("ok") for c in later if c.response
            ), call


def test_every_view_survives_previews_slack_cannot_load(unreachable_previews: Live) -> None:
    live = unreachable_previews
    live.post(live.add_jpeg("F0PIC", seed=11))
    prompt = delivered(live, "chat.postEphemeral")
    assert "Add details" in json.dumps(prompt.params["blocks"])
    home = delivered(live, "views.publish")  # App Home, with the new image listed
    assert "f0pic" in json.dumps(home.params["view"])
    (image,) = live.stored()

    view_id, view = live.click_to_open(details_ids.ADD_DETAILS, str(image.id))
    refused_then_sent(live, "views.open")  # the details modal shows the picture
    assert view["callback_id"] == details_ids.DETAILS_MODAL
    reply = live.submit(view_id, form_values([image.id], titles=["Hero"], approvers=[MEMBER]))
    assert reply.status == 200 and not reply.body
    summary = wait_until(
        lambda: [r for r in live.responses() if "Hero" in json.dumps(r.get("blocks"))],
        what="the summary",
    )
    assert not pictures(summary[-1])
    card = refused_then_sent(live, "chat.postMessage", to=MEMBER)  # the approver's card
    assert "Approve" in json.dumps(card.params["blocks"])
    wait_until(live.cards_recorded, what="the card recorded")

    live.click(approvals_ids.APPROVE, "1", user=MEMBER, channel=None)
    refused_then_sent(live, "chat.update")  # every card tells the outcome
    wait_until(lambda: (live.image(image.id) or image).status == "approved", what="approved")

    answer = live.command("Hero", user=POSTER, channel=PUBLIC_CHANNEL)
    assert "Hero" in json.dumps(answer["blocks"]) and not pictures(answer)
    nothing_lost(live)

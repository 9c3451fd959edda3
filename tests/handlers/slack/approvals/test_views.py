"""The approval card and status line with a client among the approvers: named, escaped,
never a broken mention."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.approval_queue import CardImage
from bot.approvals import RequestView, VoteView
from handlers.slack.approvals.views import approval_card, approval_status, request_modal

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def request(state: str, votes: list[tuple[str, str | None, str | None]]) -> RequestView:
    return RequestView(
        id=7,
        team_id="T1",
        image_id=3,
        requested_by="UPAT",
        policy="all",
        note="",
        due_at=None,
        state=state,
        decided_at=WHEN if state != "open" else None,
        created_at=WHEN,
        votes=[VoteView(a, d, r, a if d else None, None, None, None) for a, d, r in votes],
        outside={"review:3": "<!channel> & Co"},
    )


def test_a_client_is_named_and_escaped_never_mentioned() -> None:
    waiting = request("open", [("UMAX", "approved", None), ("review:3", None, None)])
    assert approval_status(waiting) == (
        "Approved so far by <@UMAX>; waiting for &lt;!channel&gt; &amp; Co (client)"
    )
    rejected = request("rejected", [("UMAX", None, None), ("review:3", "rejected", "<b>no</b>")])
    line = approval_status(rejected)
    assert (
        line == ":no_entry: Rejected by &lt;!channel&gt; &amp; Co (client): &lt;b&gt;no&lt;/b&gt;"
    )
    _, card = approval_card(waiting, CardImage("Hero", [], None, None, None, None))
    assert "<@review" not in json.dumps(card) and "<!channel>" not in json.dumps(card)


def test_the_request_modal_has_the_outside_field_within_slacks_limits() -> None:
    modal = request_modal(1, title="Hero", approvers=[])
    field = next(b for b in modal["blocks"] if b.get("block_id") == "approvals.outside")
    assert field["optional"] and field["element"]["multiline"]
    assert len(field["label"]["text"]) <= 2000 and len(field["hint"]["text"]) <= 2000
    assert len(modal["blocks"]) <= 100

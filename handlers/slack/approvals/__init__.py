"""Approvals: asking for one (button and modal), the approver's card and its Approve /
Reject buttons (with the reason modal), cancelling, the history, and the reminders."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.approvals import ids
from handlers.slack.approvals.listeners import (
    approve,
    ask,
    ask_submitted,
    cancel_request,
    reject,
    reject_submitted,
    show_history,
)
from handlers.slack.routing import routed


def register(app: App) -> None:
    app.action(routed(ids.APPROVE, ids.OLD[ids.APPROVE]))(approve)
    app.action(routed(ids.REJECT, ids.OLD[ids.REJECT]))(reject)
    app.view(routed(ids.REJECT_MODAL, ids.OLD[ids.REJECT_MODAL]))(reject_submitted)
    app.action(routed(ids.CANCEL_REQUEST, ids.OLD[ids.CANCEL_REQUEST]))(cancel_request)
    app.action(routed(ids.REQUEST_APPROVAL, ids.OLD[ids.REQUEST_APPROVAL]))(ask)
    app.view(routed(ids.REQUEST_MODAL, ids.OLD[ids.REQUEST_MODAL]))(ask_submitted)
    app.action(routed(ids.SHOW_HISTORY, ids.OLD[ids.SHOW_HISTORY]))(show_history)

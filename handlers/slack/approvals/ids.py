"""Approvals: the card's buttons, the request and reject modals."""

from __future__ import annotations

APPROVE = "approvals.approve"
REJECT = "approvals.reject"
CANCEL_REQUEST = "approvals.cancel"
REQUEST_APPROVAL = "approvals.request"
SHOW_HISTORY = "approvals.history"
REJECT_MODAL = "approvals.reject_reason"
REQUEST_MODAL = "approvals.request_modal"

# Input blocks of the modals (unchanged, so an open modal still submits)
REASON_BLOCK = "reason"
NOTE_BLOCK = "note"
DUE_BLOCK = "due"
APPROVERS_BLOCK = "approvers"
OUTSIDE_BLOCK = "approvals.outside"

# What the same things were called before ids named their surface (see handlers.slack.routing).
OLD = {
    APPROVE: "approve",
    REJECT: "reject",
    CANCEL_REQUEST: "cancel_request",
    REQUEST_APPROVAL: "request_approval",
    SHOW_HISTORY: "show_history",
    REJECT_MODAL: "reject_reason",
    REQUEST_MODAL: "request_approval",
}

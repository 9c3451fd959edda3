"""Every Block Kit action id, block id and callback id, in one place, one name per thing."""

from __future__ import annotations

# Buttons and menus
ADD_DETAILS = "add_details"
KEEP_DUPLICATE = "keep_duplicate"
DISCARD_DUPLICATE = "discard_duplicate"
EDIT_DETAILS = "edit_details"
TAGS = "tags"
CATEGORY = "category"  # the details modal's category select (options searched)
SEARCH_NEWER = "search_newer"  # two ids: an actions block may not repeat one
SEARCH_OLDER = "search_older"
SHARE_IMAGE = "share_image"
OPEN_ORIGINAL = "open_original"

APPROVE = "approve"
REJECT = "reject"
CANCEL_REQUEST = "cancel_request"
REQUEST_APPROVAL = "request_approval"
SHOW_HISTORY = "show_history"

# Modals and shortcuts
DETAILS_MODAL = "image_details"
ADD_TO_LIBRARY_SHORTCUT = "add_to_library"
REJECT_MODAL = "reject_reason"
REQUEST_MODAL = "request_approval"

# Input blocks of the details modal (their block ids key field errors)
TITLE_BLOCK = "title"  # one per image: f"{TITLE_BLOCK}:{image_id}"
TAGS_BLOCK = "tags"
CATEGORY_BLOCK = "category"
SHOOT_DATE_BLOCK = "shoot_date"
DESCRIPTION_BLOCK = "description"
APPROVERS_BLOCK = "approvers"
REASON_BLOCK = "reason"
NOTE_BLOCK = "note"
DUE_BLOCK = "due"

"""Every Block Kit action id, block id and callback id, in one place, one name per thing."""

from __future__ import annotations

# Buttons and menus
ADD_DETAILS = "add_details"
KEEP_DUPLICATE = "keep_duplicate"
DISCARD_DUPLICATE = "discard_duplicate"
EDIT_DETAILS = "edit_details"
TAGS = "tags"
SEARCH_NEWER = "search_newer"  # two ids: an actions block may not repeat one
SEARCH_OLDER = "search_older"
SHARE_IMAGE = "share_image"
OPEN_ORIGINAL = "open_original"

# Modals and shortcuts
DETAILS_MODAL = "image_details"
ADD_TO_LIBRARY_SHORTCUT = "add_to_library"

# Input blocks of the details modal (their block ids key field errors)
TITLE_BLOCK = "title"  # one per image: f"{TITLE_BLOCK}:{image_id}"
TAGS_BLOCK = "tags"
CATEGORY_BLOCK = "category"
SHOOT_DATE_BLOCK = "shoot_date"
DESCRIPTION_BLOCK = "description"
APPROVERS_BLOCK = "approvers"

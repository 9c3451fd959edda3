"""Details: the buttons that open the details modal, the modal and its inputs."""

from __future__ import annotations

ADD_DETAILS = "details.add"
EDIT_DETAILS = "details.edit"
TAGS = "details.tags"  # the tags multi-select (options searched)
CATEGORY = "details.category"  # the category select (options searched)
DETAILS_MODAL = "details.modal"

# Input blocks (their block ids key field errors; unchanged, so an open modal still submits)
TITLE_BLOCK = "title"  # one per image: f"{TITLE_BLOCK}:{image_id}"
TAGS_BLOCK = "tags"
CATEGORY_BLOCK = "category"
SHOOT_DATE_BLOCK = "shoot_date"
DESCRIPTION_BLOCK = "description"
APPROVERS_BLOCK = "approvers"

# What the same things were called before ids named their surface (see handlers.slack.routing).
OLD = {
    ADD_DETAILS: "add_details",
    EDIT_DETAILS: "edit_details",
    TAGS: "tags",
    CATEGORY: "category",
    DETAILS_MODAL: "image_details",
}

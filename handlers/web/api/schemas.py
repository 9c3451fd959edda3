"""The API's shapes, one source: these schemas validate requests, shape answers and are
the OpenAPI document. Only what a type can say is checked here; the library's rules (tag
limits, titles, who may approve) stay in `bot/` and come back as 422s per field."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload

from storage.query import MAX_QUERY_CHARS, STATUSES

MAX_ID = 2**63 - 1  # what no database column holds is an image that does not exist
USER_ID = r"^[UW][A-Z0-9]{2,31}$"


class Text(ma.fields.String):
    """A string a database can keep: no NUL, no lone surrogate."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Remove the NUL character.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ma.ValidationError("Send valid UTF-8 text.") from None
        return text


def _id(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=ma.validate.Range(1, MAX_ID), **kwargs)


# -- requests ----------------------------------------------------------------------------


class SearchArgs(ma.Schema):
    q = Text(
        load_default="",
        validate=ma.validate.Length(max=MAX_QUERY_CHARS // 4),
        metadata={"description": "The Slack query language, as in `/images`."},
    )
    category = ma.fields.List(
        Text(validate=ma.validate.Length(1, 100)),
        load_default=list,
        validate=ma.validate.Length(max=10),
    )
    tag = ma.fields.List(
        Text(validate=ma.validate.Length(1, 50)),
        load_default=list,
        validate=ma.validate.Length(max=10),
    )
    status = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(STATUSES)), load_default=list
    )
    from_ = ma.fields.Date(data_key="from", metadata={"description": "Shot on or after."})
    to = ma.fields.Date(metadata={"description": "Shot on or before."})
    limit = ma.fields.Integer(load_default=24, validate=ma.validate.Range(1, 100))
    cursor = ma.fields.String(
        validate=ma.validate.Regexp(r"^[A-Za-z0-9_-]{1,100}$"),
        metadata={"description": "`next_cursor` or `prev_cursor` of the previous page."},
    )


class DetailsArgs(ma.Schema):
    """Only the fields sent change; the others keep their values."""

    title = Text()
    tags = ma.fields.List(Text(), validate=ma.validate.Length(max=100))
    category_id = _id(allow_none=True)
    shoot_date = ma.fields.Date(allow_none=True)
    description = Text()


class UploadArgs(ma.Schema):
    file = ma.fields.List(Upload(), required=True, metadata={"description": "One or more images."})
    audience = Text(
        load_default="workspace",
        metadata={"description": "`workspace`, or the id of a conversation you are in."},
    )


class TagArgs(ma.Schema):
    prefix = Text(load_default="", validate=ma.validate.Length(max=50))


class ApprovalListArgs(ma.Schema):
    role = ma.fields.String(
        load_default="approver", validate=ma.validate.OneOf(("approver", "requester"))
    )
    state = ma.fields.String(
        validate=ma.validate.OneOf(("open", "approved", "rejected", "cancelled"))
    )
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))


class ReviewerArgs(ma.Schema):
    name = Text(load_default="", validate=ma.validate.Length(max=100))
    email = Text(required=True, validate=ma.validate.Length(1, 254))


class ApprovalArgs(ma.Schema):
    """An object, so fields can be added later without breaking clients."""

    approvers = ma.fields.List(
        ma.fields.String(validate=ma.validate.Regexp(USER_ID)),
        load_default=list,
        validate=ma.validate.Length(max=20),
        metadata={"description": "Slack user ids (approvers, reviewers or both)."},
    )
    reviewers = ma.fields.List(
        ma.fields.Nested(ReviewerArgs),
        load_default=list,
        validate=ma.validate.Length(max=10),
        metadata={
            "description": "People outside Slack (clients): each gets a review link, "
            "e-mailed when the server sends mail, else returned once in `review_links`."
        },
    )
    note = Text(load_default="", validate=ma.validate.Length(max=1000))
    due_at = ma.fields.AwareDateTime(allow_none=True)


class DecisionArgs(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(("approve", "reject")))
    reason = Text(load_default="", metadata={"description": "Required to reject."})


# -- answers -----------------------------------------------------------------------------


class LinksSchema(ma.Schema):
    self_ = ma.fields.String(data_key="self", attribute="self", required=True)
    web = ma.fields.String(required=True)
    renditions = ma.fields.String(required=True)
    history = ma.fields.String(required=True)


class ImageSummarySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    category = ma.fields.String(required=True, allow_none=True)
    shoot_date = ma.fields.String(required=True, allow_none=True)
    uploader_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    can_edit = ma.fields.Boolean(required=True)
    links = ma.fields.Nested(LinksSchema, required=True)


class ImageSchema(ImageSummarySchema):
    file_name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    category_id = ma.fields.Integer(required=True, allow_none=True)
    conversation_id = ma.fields.String(required=True)
    width = ma.fields.Integer(required=True, allow_none=True)
    height = ma.fields.Integer(required=True, allow_none=True)
    format = ma.fields.String(required=True, allow_none=True)
    bytes = ma.fields.Integer(required=True, allow_none=True)
    duplicate_of = ma.fields.Integer(required=True, allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class ImagePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ImageSummarySchema), required=True)
    total = ma.fields.Integer(required=True)
    total_is_capped = ma.fields.Boolean(
        required=True, metadata={"description": "More than `total` match; counting stopped."}
    )
    next_cursor = ma.fields.String(required=True, allow_none=True)
    prev_cursor = ma.fields.String(required=True, allow_none=True)
    query = ma.fields.String(required=True, metadata={"description": "The query as understood."})
    problems = ma.fields.List(ma.fields.String(), required=True)
    suggestions = ma.fields.List(ma.fields.String(), required=True)


class UploadedSchema(ma.Schema):
    name = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"description": "stored, queued or failed"})
    image_id = ma.fields.Integer(required=True, allow_none=True)
    title = ma.fields.String(required=True, allow_none=True)
    reason = ma.fields.String(required=True, allow_none=True)
    duplicate_of = ma.fields.Integer(required=True, allow_none=True)


class UploadAnswerSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UploadedSchema), required=True)


class RenditionSchema(ma.Schema):
    name = ma.fields.String(required=True)
    width = ma.fields.Integer(required=True, allow_none=True)
    height = ma.fields.Integer(required=True, allow_none=True)
    crop = ma.fields.Boolean(required=True)
    url = ma.fields.String(required=True)


class RenditionsSchema(ma.Schema):
    expires_at = ma.fields.DateTime(required=True)
    items = ma.fields.List(ma.fields.Nested(RenditionSchema), required=True)


class EventSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    actor_id = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    detail = ma.fields.Dict(required=True)
    created_at = ma.fields.DateTime(required=True)
    summary = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "A client's decision told in words: \"Approved by Clara "
            '(client, via review link)".'
        },
    )


class HistorySchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EventSchema), required=True)


class CategorySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    images = ma.fields.Integer(required=True, metadata={"description": "That you may see."})
    policy = ma.fields.String(required=True)


class CategoriesSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CategorySchema), required=True)


class TagsSchema(ma.Schema):
    items = ma.fields.List(ma.fields.String(), required=True)


class VoteSchema(ma.Schema):
    approver_id = ma.fields.String(
        required=True, metadata={"description": "A Slack user id, or review:<id> for a client."}
    )
    client_name = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "A client's name."}
    )
    decision = ma.fields.String(required=True, allow_none=True)
    reason = ma.fields.String(required=True, allow_none=True)
    decided_by = ma.fields.String(required=True, allow_none=True)
    decided_at = ma.fields.DateTime(required=True, allow_none=True)


class ApprovalSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    image_id = ma.fields.Integer(required=True)
    requested_by = ma.fields.String(required=True)
    policy = ma.fields.String(required=True)
    note = ma.fields.String(required=True)
    due_at = ma.fields.DateTime(required=True, allow_none=True)
    state = ma.fields.String(required=True)
    decided_at = ma.fields.DateTime(required=True, allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    votes = ma.fields.List(ma.fields.Nested(VoteSchema), required=True)


class ReviewLinkSchema(ma.Schema):
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    approver_id = ma.fields.String(required=True, metadata={"description": "review:<id>"})
    url = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Shown only here, and only when it was not e-mailed."},
    )
    emailed = ma.fields.Boolean(required=True)
    expires_at = ma.fields.DateTime(required=True)


class AskedSchema(ApprovalSchema):
    review_links = ma.fields.List(ma.fields.Nested(ReviewLinkSchema), required=True)


class ApprovalsSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ApprovalSchema), required=True)


class DecisionSchema(ma.Schema):
    request = ma.fields.Nested(ApprovalSchema, required=True)
    counted = ma.fields.Boolean(
        required=True, metadata={"description": "False: a repeat, or already settled."}
    )

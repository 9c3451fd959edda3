"""What can go wrong storing media, in words for a person, and counted for an operator:
every failed Cloudinary call becomes a `MediaError` and one count of
imglib_cloudinary_errors{operation, status}."""

from __future__ import annotations

import logging
import re

from storage.metrics import CLOUDINARY_ERRORS

log = logging.getLogger(__name__)


class MediaError(Exception):
    """Storing or fetching failed. `retryable` says whether trying again later can help;
    the message is fit to show a person."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def cloudinary_error(exc: Exception | None, *, operation: str) -> MediaError:
    """Map the SDK's exceptions (None: an answer without the fields every success has) onto
    ours, and count it: 5xx, rate limits, timeouts and connection errors are worth retrying;
    a rejected file or bad credentials are not."""
    error = _media_error(exc)
    CLOUDINARY_ERRORS.labels(operation=operation, status=_status(exc)).inc()
    return error


def _media_error(exc: Exception | None) -> MediaError:
    import cloudinary.exceptions as cex

    if exc is None:
        # The SDK returns a non-2xx answer without an "error" key as if it succeeded.
        return MediaError("Cloudinary gave an unexpected answer", retryable=True)
    text = str(exc)[:300]
    if _no_answer(text):
        how = "it did not answer in time" if _no_answer(text) == "timeout" else "no answer"
        return MediaError(f"could not reach Cloudinary ({how})", retryable=True)
    if isinstance(exc, cex.BadRequest):
        if "too large" in text.lower():
            return MediaError(f"Cloudinary refused the file as too large ({text})", retryable=False)
        return MediaError(f"Cloudinary refused the file ({text})", retryable=False)
    if isinstance(exc, cex.AuthorizationRequired | cex.NotAllowed):
        log.error("Cloudinary rejected our credentials: check CLOUDINARY_URL")
        return MediaError("Cloudinary rejected the app's credentials", retryable=False)
    if isinstance(exc, cex.RateLimited):
        return MediaError("Cloudinary is rate limiting uploads", retryable=True)
    if isinstance(exc, cex.GeneralError):
        return MediaError("Cloudinary had a server error", retryable=True)
    # Plain cex.Error covers timeouts, connection errors and unparseable answers.
    return MediaError(f"could not reach Cloudinary ({type(exc).__name__})", retryable=True)


def _status(exc: Exception | None) -> str:
    """A label from a short fixed list: the HTTP status class Cloudinary answered, or why
    there was no usable answer."""
    import cloudinary.exceptions as cex

    if exc is None:
        return "bad_answer"
    text = str(exc)
    unparsed = re.match(r"Error parsing server response \((\d{3})\)", text)
    if unparsed:
        return "5xx" if unparsed.group(1) >= "500" else "bad_answer"
    if _no_answer(text):
        return _no_answer(text)
    by_class = {
        cex.BadRequest: "400",
        cex.AuthorizationRequired: "401",
        cex.NotAllowed: "403",
        cex.NotFound: "404",
        cex.AlreadyExists: "409",
        cex.RateLimited: "429",
        cex.GeneralError: "5xx",
    }
    for kind, status in by_class.items():
        if isinstance(exc, kind):
            return status
    return "other"  # a status the SDK does not name (a 502 with a JSON body)


def _no_answer(text: str) -> str:
    """`timeout` or `unreachable` when the SDK's message says no answer came (its upload and
    Admin API calls word that differently, and the latter raise GeneralError for it), else
    an empty string."""
    if not text.lower().startswith(("unexpected error", "socket error")):
        return ""
    return "timeout" if "timed out" in text.lower() or "timeout" in text.lower() else "unreachable"

"""The Cloudinary emulator, driven through the real ``cloudinary`` SDK."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cloudinary
import cloudinary.uploader
import cloudinary.utils
import pytest
from cloudinary.exceptions import (
    AuthorizationRequired,
    BadRequest,
    Error,
    GeneralError,
    RateLimited,
)
from PIL import Image

from tests.fakes.cloudinary_api import CloudinaryEmulator

# Every SDK call gets a timeout: the upload API has none by default.
TIMEOUT = 5


def png(width: int = 32, height: int = 16, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_png(width: int, height: int) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(emulator: CloudinaryEmulator, file: Any, **options: Any) -> dict[str, Any]:
    """Upload through the SDK with the emulator's config passed per call (no global state)."""
    merged = {"timeout": TIMEOUT, **emulator.sdk_options, **options}
    return cloudinary.uploader.upload(file, **merged)


@pytest.fixture
def emulator() -> Iterator[CloudinaryEmulator]:
    with CloudinaryEmulator() as emu:
        yield emu


@pytest.fixture
def isolated_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test change the SDK's global config; the original object comes back afterwards."""
    monkeypatch.delenv("CLOUDINARY_URL", raising=False)
    monkeypatch.delenv("CLOUDINARY_CLOUD_NAME", raising=False)
    monkeypatch.setattr(cloudinary, "_config", cloudinary.Config())
    yield


# -- addresses and config ---------------------------------------------------------------------


def test_listens_on_loopback_only(emulator: CloudinaryEmulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
    assert emulator.cloudinary_url == (
        f"cloudinary://123456789012345:emulator-secret@demo-cloud?upload_prefix={emulator.url}"
    )


def test_stop_is_idempotent_and_url_needs_a_running_server() -> None:
    emu = CloudinaryEmulator().start()
    emu.stop()
    emu.stop()
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_cloudinary_url_env_and_reset_config_point_the_sdk_at_it(
    emulator: CloudinaryEmulator, monkeypatch: pytest.MonkeyPatch, isolated_config: None
) -> None:
    monkeypatch.setenv("CLOUDINARY_URL", emulator.cloudinary_url)
    monkeypatch.setattr(cloudinary, "_config", cloudinary.Config())  # what reset_config() does
    config = cloudinary.config()
    assert (config.cloud_name, config.api_key, config.upload_prefix) == (
        "demo-cloud",
        "123456789012345",
        emulator.url,
    )

    result = cloudinary.uploader.upload(png(), public_id="from-env", timeout=TIMEOUT)

    assert result["public_id"] == "from-env"
    assert emulator.calls[-1]["signature_ok"] is True


def test_config_keyword_cloudinary_url_is_silently_ignored_by_the_sdk(
    emulator: CloudinaryEmulator, isolated_config: None
) -> None:
    # cloudinary.config(**kw) only stores attributes: the URL is never parsed.
    cloudinary.config(cloudinary_url=emulator.cloudinary_url)
    assert cloudinary.config().cloud_name is None
    with pytest.raises(ValueError, match="Must supply api_key"):
        cloudinary.uploader.upload(png(), timeout=TIMEOUT)
    assert emulator.calls == []


# -- upload -----------------------------------------------------------------------------------


def test_upload_bytes_with_folder_public_id_tags_and_context(
    emulator: CloudinaryEmulator,
) -> None:
    data = png(32, 16)

    result = upload(
        emulator,
        data,
        folder="library",
        public_id="cat",
        tags=["approved", "animals"],
        context={"caption": "a=b", "alt": "x|y"},
    )

    version = result["version"]
    assert isinstance(version, int)
    assert result["public_id"] == "library/cat"
    assert result["folder"] == "library"
    assert (result["width"], result["height"], result["format"]) == (32, 16, "png")
    assert result["bytes"] == len(data)
    assert result["etag"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result["tags"] == ["approved", "animals"]
    assert result["context"] == {"custom": {"caption": "a=b", "alt": "x|y"}}
    assert result["resource_type"] == "image"
    assert result["type"] == "upload"
    assert result["placeholder"] is False
    assert result["existing"] is False
    assert result["original_filename"] == "file"
    assert result["api_key"] == emulator.api_key
    assert re.fullmatch(r"[0-9a-f]{32}", result["asset_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", result["version_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["created_at"])
    path = f"demo-cloud/image/upload/v{version}/library/cat.png"
    assert result["url"] == f"http://res.cloudinary.com/{path}"
    assert result["secure_url"] == f"https://res.cloudinary.com/{path}"
    assert result["signature"] == cloudinary.utils.api_sign_request(
        {"public_id": "library/cat", "version": str(version)}, emulator.api_secret
    )

    stored = emulator.uploads["library/cat"]
    assert stored.data == data
    assert stored.folder == "library"
    assert stored.tags == ["approved", "animals"]
    assert stored.context == {"caption": "a=b", "alt": "x|y"}
    assert stored.params["tags"] == "approved,animals"

    call = emulator.calls[-1]
    assert call["path"] == "/v1_1/demo-cloud/image/upload"
    assert call["status"] == 200
    assert call["signature_ok"] is True
    assert call["file_bytes"] == len(data)
    assert "file" not in call["params"]


def test_upload_without_public_id_gets_a_random_id_in_the_folder(
    emulator: CloudinaryEmulator,
) -> None:
    result = upload(emulator, io.BytesIO(png()), folder="inbox")

    assert re.fullmatch(r"inbox/[a-z0-9]{20}", result["public_id"])
    assert result["original_filename"] == "stream"


def test_upload_data_uri(emulator: CloudinaryEmulator) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png(8, 4)).decode()

    result = upload(emulator, data_uri, public_id="from-uri")

    assert (result["width"], result["height"]) == (8, 4)
    assert emulator.uploads["from-uri"].data == png(8, 4)


def test_sha256_signatures_are_accepted(emulator: CloudinaryEmulator) -> None:
    upload(emulator, png(), public_id="sha256", signature_algorithm="sha256")

    assert emulator.calls[-1]["signature_ok"] is True


def test_overwrite_false_returns_the_existing_resource(emulator: CloudinaryEmulator) -> None:
    first = upload(emulator, png(color="red"), public_id="idem", overwrite=False)
    again = upload(emulator, png(color="blue"), public_id="idem", overwrite=False)

    assert first["existing"] is False
    assert again["existing"] is True
    assert again["version"] == first["version"]
    assert again["etag"] == first["etag"]
    assert emulator.uploads["idem"].data == png(color="red")
    assert len(emulator.stored) == 1

    replaced = upload(emulator, png(color="blue"), public_id="idem")  # overwrite defaults to true
    assert replaced["existing"] is False
    assert replaced["version"] > first["version"]
    assert replaced["asset_id"] == first["asset_id"]
    assert emulator.uploads["idem"].data == png(color="blue")


def test_file_over_max_bytes_is_rejected() -> None:
    data = noisy_png(40, 40)
    with CloudinaryEmulator(max_bytes=1000) as emu:
        with pytest.raises(BadRequest) as excinfo:
            upload(emu, data)
        assert str(excinfo.value) == f"File size too large. Got {len(data)}. Maximum is 1000."
        assert emu.uploads == {}


def test_non_image_bytes_are_rejected(emulator: CloudinaryEmulator) -> None:
    with pytest.raises(BadRequest, match=r"^Invalid image file$"):
        upload(emulator, b"%PDF-1.7 definitely not an image")


# -- authentication ---------------------------------------------------------------------------


def test_wrong_secret_raises_authorization_required(emulator: CloudinaryEmulator) -> None:
    with pytest.raises(AuthorizationRequired) as excinfo:
        upload(emulator, png(), public_id="x", api_secret="not-the-secret")

    message = str(excinfo.value)
    assert message.startswith("Invalid Signature ")
    assert re.search(r"String to sign - 'public_id=x&timestamp=\d+'\.$", message)
    assert emulator.calls[-1]["signature_ok"] is False
    assert emulator.calls[-1]["status"] == 401
    assert emulator.uploads == {}


def test_unknown_api_key_raises_authorization_required(emulator: CloudinaryEmulator) -> None:
    with pytest.raises(AuthorizationRequired, match="Unknown API key 999"):
        upload(emulator, png(), api_key="999")


def test_stale_timestamp_is_rejected(
    emulator: CloudinaryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudinary.utils, "now", lambda: str(int(time.time()) - 3700))

    with pytest.raises(BadRequest, match=r"^Stale request - reported time is .* 1 hour ago$"):
        upload(emulator, png())


# -- injected faults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "exception", "message"),
    [
        ("server_error", GeneralError, "General Error"),
        ("unavailable", GeneralError, "Service Unavailable"),
        ("bad_gateway_json", Error, "Bad Gateway"),  # 502 is not mapped to GeneralError
        ("server_error_no_body", Error, "Error parsing server response (502)"),
        ("rate_limited", RateLimited, "Rate Limit Exceeded"),
        ("too_large", BadRequest, "File size too large. Got 12345678. Maximum is 10485760."),
        ("bad_request", BadRequest, "Invalid image file"),
        ("unauthorized", AuthorizationRequired, "Invalid Signature "),
        ("disconnect", Error, "Unexpected error - ProtocolError('Connection aborted.'"),
    ],
)
def test_injected_fault_raises(
    emulator: CloudinaryEmulator, kind: str, exception: type[Error], message: str
) -> None:
    emulator.inject(kind)

    with pytest.raises(Error) as excinfo:
        upload(emulator, png(), public_id="faulty")

    assert type(excinfo.value) is exception
    assert str(excinfo.value).startswith(message)
    assert [call["fault"] for call in emulator.calls] == [kind]  # no silent SDK retry
    assert emulator.uploads == {}
    assert upload(emulator, png(), public_id="faulty")["public_id"] == "faulty"


def test_non_2xx_json_without_error_key_is_returned_as_a_result(
    emulator: CloudinaryEmulator,
) -> None:
    emulator.inject("no_error_key")

    result = upload(emulator, png())  # HTTP 500, yet no exception

    assert "public_id" not in result
    assert result["message"] == "Internal Server Error"
    assert emulator.calls[-1]["status"] == 500


def test_faults_are_consumed_in_order(emulator: CloudinaryEmulator) -> None:
    emulator.inject("rate_limited", times=2)
    emulator.inject("server_error")
    assert emulator.pending_faults() == ["rate_limited", "rate_limited", "server_error"]

    for expected in (RateLimited, RateLimited, GeneralError):
        with pytest.raises(expected):
            upload(emulator, png())

    assert emulator.pending_faults() == []
    assert upload(emulator, png())["existing"] is False


def test_cleared_faults_answer_no_more_uploads(emulator: CloudinaryEmulator) -> None:
    emulator.inject("unavailable", times=1000)
    with pytest.raises(GeneralError):
        upload(emulator, png())

    emulator.clear_faults()

    assert emulator.pending_faults() == []
    assert upload(emulator, png())["existing"] is False


def test_faults_do_not_apply_to_destroy(emulator: CloudinaryEmulator) -> None:
    emulator.inject("server_error")

    result = cloudinary.uploader.destroy("nothing", timeout=TIMEOUT, **emulator.sdk_options)

    assert result["result"] == "not found"
    assert emulator.pending_faults() == ["server_error"]


def test_inject_rejects_unknown_kinds(emulator: CloudinaryEmulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        emulator.inject("gremlins")


def test_slow_answer_past_sdk_timeout_raises_plain_error_but_upload_lands(
    emulator: CloudinaryEmulator,
) -> None:
    emulator.inject("slow", delay=0.8)

    with pytest.raises(Error) as excinfo:
        upload(emulator, png(), public_id="slow", overwrite=False, timeout=0.2)

    assert type(excinfo.value) is Error
    assert "ReadTimeoutError" in str(excinfo.value)
    assert "Read timed out. (read timeout=0.2)" in str(excinfo.value)
    # The server finished the upload after the client gave up, as the real one can.
    [stored] = emulator.wait_for_uploads(1, timeout=3)
    assert stored.public_id == "slow"
    # A retry with overwrite=False is idempotent.
    retry = upload(emulator, png(), public_id="slow", overwrite=False)
    assert retry["existing"] is True
    assert retry["version"] == stored.version


def test_slow_answer_within_timeout_succeeds(emulator: CloudinaryEmulator) -> None:
    emulator.inject("slow", delay=0.2)
    started = time.monotonic()

    result = upload(emulator, png(), public_id="patient")

    assert time.monotonic() - started >= 0.2
    assert result["public_id"] == "patient"


# -- destroy and tags -------------------------------------------------------------------------


def test_destroy(emulator: CloudinaryEmulator) -> None:
    upload(emulator, png(), folder="library", public_id="gone")
    options = {"timeout": TIMEOUT, **emulator.sdk_options}

    with pytest.raises(AuthorizationRequired):
        cloudinary.uploader.destroy("library/gone", **{**options, "api_secret": "wrong"})
    assert "library/gone" in emulator.uploads

    assert cloudinary.uploader.destroy("library/gone", **options)["result"] == "ok"
    assert "library/gone" not in emulator.uploads
    assert cloudinary.uploader.destroy("library/gone", **options)["result"] == "not found"
    assert emulator.calls[-1]["path"] == "/v1_1/demo-cloud/image/destroy"


def test_tags_add_remove_replace(emulator: CloudinaryEmulator) -> None:
    upload(emulator, png(), public_id="a", tags=["one"])
    upload(emulator, png(), public_id="b")
    options = {"timeout": TIMEOUT, **emulator.sdk_options}

    added = cloudinary.uploader.add_tag("two", ["a", "b", "missing"], **options)
    assert added["public_ids"] == ["a", "b"]
    assert emulator.uploads["a"].tags == ["one", "two"]
    assert emulator.uploads["b"].tags == ["two"]

    cloudinary.uploader.remove_tag("one", ["a"], notification_url="http://hook.invalid", **options)
    assert emulator.uploads["a"].tags == ["two"]

    cloudinary.uploader.replace_tag(["x", "y"], ["a"], **options)
    assert emulator.uploads["a"].tags == ["x", "y"]
    assert all(call["signature_ok"] for call in emulator.calls)
    assert emulator.calls[-1]["params"]["public_ids"] == ["a"]


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_uploads(emulator: CloudinaryEmulator) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: upload(emulator, png(4 + i, 4)), range(8)))

    stored = emulator.wait_for_uploads(8, timeout=5)
    assert len(stored) == 8
    assert len({result["public_id"] for result in results}) == 8
    assert len({result["version"] for result in results}) == 8
    assert sorted(item.width or 0 for item in stored) == list(range(4, 12))


def test_wait_for_uploads_times_out(emulator: CloudinaryEmulator) -> None:
    with pytest.raises(TimeoutError, match="expected 1 stored uploads"):
        emulator.wait_for_uploads(1, timeout=0.1)


def test_delivery_type_is_recorded_checked_and_signed_like_cloudinary(
    emulator: CloudinaryEmulator,
) -> None:
    result = upload(emulator, png(), public_id="secret/cat", type="authenticated")
    assert result["type"] == "authenticated"
    assert emulator.uploads["secret/cat"].type == "authenticated"
    assert emulator.delivery_status(result["secure_url"]) == 200

    def sdk_url(secret: str, **options: Any) -> str:
        url, _ = cloudinary.utils.cloudinary_url(
            "secret/cat",
            type="authenticated",
            sign_url=True,
            secure=True,
            cloud_name=emulator.cloud_name,
            api_secret=secret,
            **options,
        )
        return str(url)

    # URLs the SDK signs with the account's secret are delivered; any other signature is not.
    assert emulator.delivery_status(sdk_url(emulator.api_secret, width=100, crop="scale")) == 200
    assert emulator.delivery_status(sdk_url(emulator.api_secret, format="png")) == 200
    assert emulator.delivery_status(sdk_url("not-the-secret", width=100, crop="scale")) == 401
    unsigned, _ = cloudinary.utils.cloudinary_url(
        "secret/cat", type="authenticated", secure=True, cloud_name=emulator.cloud_name
    )
    assert emulator.delivery_status(str(unsigned)) == 401
    # A public upload is delivered from any URL of its type.
    public = upload(emulator, png(color="blue"), public_id="open/dog")
    assert public["type"] == "upload"
    assert emulator.delivery_status(public["secure_url"]) == 200

    with pytest.raises(BadRequest, match="Invalid type"):
        upload(emulator, png(), public_id="x", type="sideways")
    # Destroy finds an asset only under its own type, as the real API does.
    destroy = {"timeout": TIMEOUT, **emulator.sdk_options}
    assert cloudinary.uploader.destroy("secret/cat", **destroy)["result"] == "not found"
    gone = cloudinary.uploader.destroy("secret/cat", type="authenticated", **destroy)
    assert gone["result"] == "ok"
    assert "secret/cat" not in emulator.uploads

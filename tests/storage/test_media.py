"""One contract, both media stores: LocalStore on disk, CloudinaryStore against the emulator
through the real cloudinary SDK."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from storage.media import CloudinaryStore, LocalStore, MediaError, MediaInfo, MediaStore
from tests import images
from tests.fakes.cloudinary_api import CloudinaryEmulator


@pytest.fixture(params=["local", "cloudinary"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MediaStore]:
    if request.param == "local":
        yield LocalStore(
            tmp_path / "media", signing_key=b"k" * 32, public_base_url="https://lib.example.com"
        )
    else:
        with CloudinaryEmulator().start() as emulator:
            store = CloudinaryStore(emulator.cloudinary_url, timeout=5)
            store.emulator = emulator  # type: ignore[attr-defined]
            yield store


def original(tmp_path: Path, data: bytes) -> tuple[Path, MediaInfo]:
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    info = MediaInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format="JPEG",
        team_id="T0TEAM1",
        category="Marketing",
        tags=("cmo", "launch"),
        context=(("slack_file_id", "F123"),),
    )
    return path, info


def stored_bytes(store: MediaStore, key: str) -> bytes:
    if isinstance(store, LocalStore):
        return store.path_for(key).read_bytes()
    return store.emulator.uploads[key].data  # type: ignore[attr-defined]


def test_put_keeps_the_exact_original(store: MediaStore, tmp_path: Path) -> None:
    data = images.jpeg(seed=1)
    path, info = original(tmp_path, data)
    result = store.put(path, info)
    assert stored_bytes(store, result.key) == data
    assert result.bytes == len(data)
    assert path.exists(), "the caller keeps its file"


def test_put_twice_is_idempotent(store: MediaStore, tmp_path: Path) -> None:
    path, info = original(tmp_path, images.jpeg(seed=2))
    first = store.put(path, info)
    second = store.put(path, info)
    assert first.key == second.key


def test_thumbnail_url_is_an_https_link(store: MediaStore, tmp_path: Path) -> None:
    path, info = original(tmp_path, images.jpeg(seed=3))
    key = store.put(path, info).key
    url = store.thumbnail_url(key, width=360, height=240)
    assert url is not None
    assert url.startswith("https://")
    assert "360" in url


def test_delete_removes_the_original(store: MediaStore, tmp_path: Path) -> None:
    path, info = original(tmp_path, images.jpeg(seed=4))
    key = store.put(path, info).key
    store.delete(key)
    if isinstance(store, LocalStore):
        assert not store.path_for(key).exists()
    else:
        assert key not in store.emulator.uploads  # type: ignore[attr-defined]


def test_cloudinary_gets_folder_tags_and_context(tmp_path: Path) -> None:
    with CloudinaryEmulator().start() as emulator:
        store = CloudinaryStore(emulator.cloudinary_url, timeout=5)
        path, info = original(tmp_path, images.jpeg(seed=5))
        result = store.put(path, info)
        upload = emulator.uploads[result.key]
        assert result.key == f"library/T0TEAM1/marketing/{info.sha256}"
        assert upload.tags == ["cmo", "launch"]
        assert upload.context == {"slack_file_id": "F123"}
        assert result.url.startswith("https://res.cloudinary.com/")
        assert all(call["signature_ok"] for call in emulator.calls)


@pytest.mark.parametrize(
    ("fault", "retryable", "words", "status"),
    [
        ("server_error", True, "server error", "5xx"),
        ("unavailable", True, "server error", "5xx"),
        ("bad_gateway_json", True, "could not reach", "other"),
        ("server_error_no_body", True, "could not reach", "5xx"),
        ("no_error_key", True, "unexpected answer", "bad_answer"),
        ("rate_limited", True, "rate limiting", "429"),
        ("disconnect", True, "could not reach", "unreachable"),
        ("too_large", False, "too large", "400"),
        ("bad_request", False, "refused", "400"),
        ("unauthorized", False, "credentials", "401"),
    ],
)
def test_cloudinary_errors_map_to_retryable_or_not_and_are_counted(
    fault: str, retryable: bool, words: str, status: str, tmp_path: Path
) -> None:
    before = uploads_failed(status)
    with CloudinaryEmulator().start() as emulator:
        store = CloudinaryStore(emulator.cloudinary_url, timeout=5)
        emulator.inject(fault)
        path, info = original(tmp_path, images.jpeg(seed=6))
        with pytest.raises(MediaError) as caught:
            store.put(path, info)
        assert caught.value.retryable is retryable
        assert words in str(caught.value)
        assert emulator.cloudinary_url.split(":")[2].split("@")[0] not in str(caught.value)
    assert uploads_failed(status) == before + 1


def test_cloudinary_timeout_is_retryable_and_counted_as_one(tmp_path: Path) -> None:
    before = uploads_failed("timeout")
    with CloudinaryEmulator().start() as emulator:
        store = CloudinaryStore(emulator.cloudinary_url, timeout=0.5)
        emulator.inject("slow", delay=2.0)
        path, info = original(tmp_path, images.jpeg(seed=7))
        with pytest.raises(MediaError) as caught:
            store.put(path, info)
        assert caught.value.retryable
        assert "in time" in str(caught.value)
    assert uploads_failed("timeout") == before + 1


def test_cloudinary_ping_says_why_it_is_down(tmp_path: Path) -> None:
    with CloudinaryEmulator().start() as emulator:
        store = CloudinaryStore(emulator.cloudinary_url, timeout=5)
        assert store.problem() is None
        wrong = CloudinaryStore(emulator.cloudinary_url.replace("emulator-secret", "x" * 15))
        assert wrong.problem() == "Cloudinary rejected the app's credentials"
    assert store.problem() == "could not reach Cloudinary (no answer)"


def uploads_failed(status: str) -> float:
    """This process's count of failed uploads with `status` (imglib_cloudinary_errors)."""
    labels = {"operation": "upload", "status": status}
    return REGISTRY.get_sample_value("imglib_cloudinary_errors_total", labels) or 0.0


def test_local_store_never_shows_a_half_written_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media", signing_key=b"k" * 32)
    path, info = original(tmp_path, images.jpeg(seed=8))
    key = store.put(path, info).key
    leftovers = list((tmp_path / "media" / "tmp").iterdir())
    assert leftovers == []
    assert store.path_for(key).read_bytes() == path.read_bytes()


def test_local_signed_urls_verify_and_expire(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "m", signing_key=b"k" * 32, public_base_url="https://x.test")
    path, info = original(tmp_path, images.jpeg(seed=9))
    key = store.put(path, info).key
    url = store.thumbnail_url(key, width=100, height=80)
    assert url is not None
    _, rest = url.split("/media/", 1)
    path_part, query = rest.split("?", 1)
    assert store.verify_signed_path("/media/" + path_part, query) == (key, 100, 80, False)
    tampered = query.replace("w=100", "w=200")
    assert store.verify_signed_path("/media/" + path_part, tampered) is None
    other = LocalStore(tmp_path / "m", signing_key=b"x" * 32, public_base_url="https://x.test")
    assert other.verify_signed_path("/media/" + path_part, query) is None
    expired = store.signed_url(key, ttl_seconds=-1)
    assert expired is not None
    assert store.verify_signed_path("/media/" + path_part, expired.split("?", 1)[1]) is None


def test_a_cropped_link_signs_its_crop(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "m", signing_key=b"k" * 32, public_base_url="https://x.test")
    path, info = original(tmp_path, images.jpeg(seed=11))
    key = store.put(path, info).key
    url = store.signed_url(key, width=1080, height=1080, crop=True)
    assert url is not None and "c=1" in url
    path_part, query = url.split("/media/", 1)[1].split("?", 1)
    assert store.verify_signed_path("/media/" + path_part, query) == (key, 1080, 1080, True)
    # Dropping the crop (or adding one to a fitted link) breaks the signature.
    assert store.verify_signed_path("/media/" + path_part, query.replace("c=1&", "")) is None
    fitted = store.signed_url(key, width=1080, height=1080)
    assert fitted is not None
    fitted_query = fitted.split("?", 1)[1]
    assert store.verify_signed_path("/media/" + path_part, fitted_query + "&c=1") is None


def test_local_store_without_public_url_offers_no_links(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "m", signing_key=b"k" * 32)
    path, info = original(tmp_path, images.jpeg(seed=10))
    key = store.put(path, info).key
    assert store.thumbnail_url(key, width=10, height=10) is None
    assert store.original_url(key) is None


def test_cloudinary_originals_are_authenticated_and_every_link_is_signed(tmp_path: Path) -> None:
    with CloudinaryEmulator().start() as emulator:
        store = CloudinaryStore(emulator.cloudinary_url, timeout=5)
        path, info = original(tmp_path, images.jpeg(seed=12))
        stored = store.put(path, info)
        upload = emulator.uploads[stored.key]
        assert upload.type == "authenticated"
        assert upload.params["type"] == "authenticated"
        preview = store.thumbnail_url(stored.key, width=360, height=240)
        full = store.original_url(stored.key)
        assert preview is not None
        assert full is not None
        for url in (preview, full, stored.url):
            assert "/image/authenticated/s--" in url
            assert emulator.delivery_status(url) == 200, url
        # Someone who saw the preview edits its URL: another size, or no transformation.
        bigger = preview.replace("w_360", "w_4000").replace("h_240", "h_3000")
        assert emulator.delivery_status(bigger) == 401
        sig_and_rest = preview.split("/image/authenticated/", 1)[1]
        signature = sig_and_rest.split("/", 1)[0]
        stripped = preview.replace("c_fill,f_auto,h_240,q_auto,w_360/", "")
        assert signature in stripped
        assert emulator.delivery_status(stripped) == 401
        public = full.replace("/image/authenticated/", "/image/upload/")
        assert emulator.delivery_status(public) == 404
        store.delete(stored.key)
        assert stored.key not in emulator.uploads

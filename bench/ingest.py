"""Ingest benchmark: CPU seconds and peak memory per image (against a naive Pillow decode +
hash in the same run), the app's peak memory while it ingests five 48 MP JPEGs (and five
60 MP PNGs) at once (goal: under 256 MB each), and while it ingests a 10000 x 10000 RGBA PNG
and serves its first thumbnail (goal: under 200 MB).

    .venv/bin/python bench/ingest.py            # full run (3 repeats), under 5 minutes
    .venv/bin/python bench/ingest.py --quick    # 1 repeat, under 60 seconds

Figures go to stdout as `name: value` lines; progress goes to stderr. Exit status 1 when
anything failed (an image not stored, the app not starting, a timeout), with the reason.

Per-image figures run the app's own ingest path (`Ingestor.run`: download from the Slack
emulator, validate, hash, store, mark stored) in a fresh process per measurement. Peak RSS is
read from /proc/self/status (VmHWM, reset through /proc/self/clear_refs after setup), not
from `ru_maxrss`: on Linux a child's `ru_maxrss` starts at its parent's peak RSS (the
high-water mark survives vfork + exec), so it would report this script's size instead. See
bench/README.md for what each figure means.

Only 127.0.0.1 is ever contacted: the Slack emulator and the app both listen on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = ROOT / "bench" / ".cache"
CACHE_VERSION = "v2"
MB = 1024 * 1024

TEAM = "T0TEAM1"
POSTER = "UPOSTER"
ADMIN = "UADMIN"
CHANNEL = "C0BENCH"

CHILD_TIMEOUT_S = 120.0  # one measurement in a fresh process
APP_START_TIMEOUT_S = 60.0
STORE_TIMEOUT_S = 120.0  # five 48 MP JPEGs stored by the app
SAMPLE_EVERY_S = 0.05
POLL_EVERY_S = 0.1
GOAL_MB = 256  # the app's whole process tree, five big images at once
GOAL_THUMB_MB = 200  # ingest + first /media thumbnail of the 100 MP RGBA PNG
# CPU per image as a share of the naive decode + hash, measured in the same run.
GOAL_CPU_RATIO = {"12mp_jpeg": 0.45, "48mp_jpeg": 0.3, "60mp_png": 0.45}
BIG_RGBA = (10000, 10000)  # 100 MP, inside MAX_IMAGE_MEGAPIXELS


class BenchError(Exception):
    """Something did not work; the message says what (and the script exits 1)."""


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def figure(name: str, value: float, digits: int) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


# --------------------------------------------------------------------------------------------
# Test images: photo-like, generated once with numpy + Pillow, cached under bench/.cache/


@dataclass(frozen=True)
class Shape:
    name: str  # as in the figure names: 12mp_jpeg, 48mp_jpeg, 60mp_png
    width: int
    height: int
    format: str  # JPEG or PNG
    seed: int


SHAPES = (
    Shape("12mp_jpeg", 4000, 3000, "JPEG", seed=12),
    Shape("48mp_jpeg", 8000, 6000, "JPEG", seed=48),
    Shape("60mp_png", 10000, 6000, "PNG", seed=60),
)
JPEG_QUALITY = 92
GRAIN = 10  # +/- per channel: a 48 MP JPEG of ~12 MB, like a phone's or a camera's
CONCURRENT = 5  # variants posted at once: same scene, distinct bytes
CONCURRENT_SHAPES = ("48mp_jpeg", "60mp_png")


def scene(width: int, height: int, *, seed: int, grain: int):  # type: ignore[no-untyped-def]
    """A landscape-like picture: sky and ground gradients, a hilly horizon, soft translucent
    shapes, low-frequency texture and a vignette, drawn at 1/8 scale and enlarged; then
    per-pixel grain (+/- `grain`) at full size, like sensor noise. Returns a PIL image."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    sw, sh = max(64, width // 8), max(48, height // 8)
    y = np.linspace(0.0, 1.0, sh, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, sw, dtype=np.float32)[None, :, None]
    sky_top, sky_low = rng.uniform(90, 200, 3), rng.uniform(170, 250, 3)
    ground_top, ground_low = rng.uniform(40, 150, 3), rng.uniform(10, 90, 3)
    horizon = 0.45 + 0.08 * np.sin(x * rng.uniform(4, 9) + rng.uniform(0, 6))
    horizon += 0.03 * np.sin(x * rng.uniform(15, 30) + rng.uniform(0, 6))
    t_sky = np.clip(y / horizon, 0, 1)
    t_ground = np.clip((y - horizon) / (1 - horizon), 0, 1)
    img = np.where(
        y < horizon,
        sky_top * (1 - t_sky) + sky_low * t_sky,
        ground_top * (1 - t_ground) + ground_low * t_ground,
    )
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGBA")
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(14):
        cx, cy = int(rng.integers(0, sw)), int(rng.integers(sh // 3, sh))
        rx, ry = int(rng.integers(sw // 40, sw // 8)), int(rng.integers(sh // 30, sh // 5))
        colour = (*(int(v) for v in rng.integers(20, 230, 3)), int(rng.integers(110, 230)))
        if rng.random() < 0.7:
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        else:
            draw.rectangle((cx - rx, cy - 2 * ry, cx + rx, cy + ry), fill=colour)
    canvas = Image.alpha_composite(canvas, overlay).convert("RGB")
    canvas = canvas.filter(ImageFilter.GaussianBlur(1.2))

    def value_noise(cells_x: int, cells_y: int, amplitude: float):  # type: ignore[no-untyped-def]
        coarse = rng.normal(128, amplitude, (cells_y, cells_x)).clip(0, 255).astype(np.uint8)
        up = Image.fromarray(coarse).resize((sw, sh), Image.Resampling.BICUBIC)
        return np.asarray(up, dtype=np.float32)[..., None] / 128.0 - 1.0

    shade = 1.0 + 0.6 * value_noise(12, 9, 40) + 0.25 * value_noise(sw // 6, sh // 6, 45)
    vignette = 1.0 - 0.35 * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2
    pixels = np.asarray(canvas, dtype=np.float32) * shade * vignette
    small = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    full = np.array(small.resize((width, height), Image.Resampling.BICUBIC))
    if grain:
        band = 256  # rows at a time: int16 noise for all of 48 MP would be 288 MB
        for top in range(0, height, band):
            rows = full[top : top + band]
            noisy = rows.astype(np.int16)
            noisy += rng.integers(-grain, grain + 1, rows.shape, dtype=np.int16)
            np.clip(noisy, 0, 255, out=noisy)
            rows[...] = noisy
    return Image.fromarray(full)


def exif_for(index: int):  # type: ignore[no-untyped-def]
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS R5"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = f"2026:11:03 14:05:{index % 60:02d}"
    sub[ExifTags.Base.OffsetTimeOriginal] = "+01:00"
    return exif


def cache_path(shape: Shape, variant: int = 0) -> Path:
    ext = "jpg" if shape.format == "JPEG" else "png"
    suffix = f"-v{variant}" if variant else ""
    return CACHE / f"{CACHE_VERSION}-{shape.name}{suffix}.{ext}"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def ensure_images() -> dict[str, Path]:
    """The test files (generated on the first run): one per shape plus the 48 MP variants."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Path] = {}
    for shape in SHAPES:
        variants = CONCURRENT if shape.name in CONCURRENT_SHAPES else 1
        paths = [cache_path(shape, v) for v in range(variants)]
        for v, path in enumerate(paths):
            wanted[f"{shape.name}#{v}"] = path
        if all(p.is_file() for p in paths):
            continue
        started = time.perf_counter()
        # A PNG is a render or an export, not a camera file: per-pixel grain would make a
        # 60 MP PNG 70-85 MB, over the app's 50 MB MAX_IMAGE_MB, so it is refused unread.
        image = scene(
            shape.width, shape.height, seed=shape.seed, grain=GRAIN if shape.format == "JPEG" else 0
        )
        for v, path in enumerate(paths):
            out = io.BytesIO()
            if shape.format == "JPEG":
                image.save(out, "JPEG", quality=JPEG_QUALITY - v, exif=exif_for(v))
            else:
                image.save(out, "PNG", compress_level=6 - v)
            _write_atomically(path, out.getvalue())
        del image
        gc.collect()
        sizes = ", ".join(f"{p.stat().st_size / MB:.1f} MB" for p in paths)
        info(f"generated {shape.name} ({sizes}) in {time.perf_counter() - started:.1f} s")
    return wanted


def ensure_big_rgba_png() -> Path:
    """A 10000 x 10000 RGBA PNG that compresses well (about 2 MB): smooth colour ramps
    with soft-edged translucent shapes. Its size on disk is nothing; its 400 MB of pixels are
    what a naive decode pays."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    path = CACHE / f"{CACHE_VERSION}-100mp_rgba.png"
    if path.is_file():
        return path
    started = time.perf_counter()
    width, height = BIG_RGBA
    small = Image.new("RGBA", (width // 16, height // 16), (0, 0, 0, 0))
    draw = ImageDraw.Draw(small)
    rng = np.random.default_rng(100)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(0, width // 16, 2))
        r = int(rng.integers(20, 150))
        colour = (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(80, 255)))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    small = small.filter(ImageFilter.GaussianBlur(3))
    big = small.resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    big.save(out, "PNG", compress_level=9)
    del big
    _write_atomically(path, out.getvalue())
    info(
        f"generated 100mp_rgba ({path.stat().st_size / MB:.2f} MB) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return path


def tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 140, 160)).save(out, "JPEG", quality=90, exif=exif_for(59))
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Child processes: one measurement each, in a fresh interpreter


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False when not allowed here."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _measured(result: dict[str, Any]) -> Iterator[None]:
    gc.collect()
    result["rss_before_kb"] = _status_kb("VmRSS")
    result["peak_reset"] = _reset_peak()
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    yield
    result["cpu_s"] = _cpu_s() - cpu0
    result["wall_s"] = time.perf_counter() - wall0
    result["peak_rss_kb"] = _status_kb("VmHWM")
    # For the record only: inherited from the parent's high-water mark (see the docstring).
    result["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def watch(factory: Any, *, now: Any) -> None:
    """Watch the bench channel the way the app's admin command does (`bot.admin.watch`; older
    trees had `bot.library.watch_channel`)."""
    try:
        from bot.admin import watch as admin_watch
    except ImportError:
        from bot.library import watch_channel  # type: ignore[attr-defined]

        watch_channel(
            factory, team_id=TEAM, channel_id=CHANNEL, added_by=ADMIN, category_id=None, now=now
        )
        return
    admin_watch(
        factory, team_id=TEAM, channel_id=CHANNEL, category_name=None, actor_id=ADMIN, now=now
    )


def child_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    """The app's ingest of one file, after a warm-up ingest of a tiny JPEG (imports, SQL
    compilation), so the figure is the per-image cost."""
    import bot.ingestor
    from bot.config import Settings
    from bot.domain import Post
    from bot.library import record_posted_files
    from bot.wiring import build_services
    from handlers.slack.files import posted_file_from_slack
    from storage.models import IngestState

    # The decode + hash alone (`bot.imaging.inspect`, what the naive baseline does), timed
    # inside the ingest with the process's CPU (libvips decodes on its own worker threads;
    # nothing else in this process is busy while the ingest runs).
    decode_cpu: list[float] = []
    real_inspect = bot.ingestor.inspect

    def timed_inspect(path: Path, *, max_pixels: int) -> Any:
        before = _cpu_s()
        try:
            return real_inspect(path, max_pixels=max_pixels)
        finally:
            decode_cpu.append(_cpu_s() - before)

    bot.ingestor.inspect = timed_inspect  # type: ignore[assignment]
    services = build_services(Settings.from_env(spec["env"], dotenv=False))
    try:
        now = services.clock()
        watch(services.factory, now=now)
        warm_id, job_id = record_posted_files(
            services.factory,
            post=Post(team_id=TEAM, channel_id=CHANNEL, user_id=POSTER, message_ts="1.000100"),
            files=[posted_file_from_slack(f) for f in (spec["warm_file"], spec["file"])],
            event_id=None,
            now=now,
        )
        warm = services.ingestor.run(warm_id)
        if warm is None or warm.state != IngestState.STORED:
            raise BenchError(f"warm-up ingest was not stored: {warm}")
        result: dict[str, Any] = {}
        with _measured(result):
            outcome = services.ingestor.run(job_id)
        if outcome is None or outcome.state != IngestState.STORED:
            raise BenchError(f"the image was not stored: {outcome}")
        result["decode_cpu_s"] = decode_cpu[-1]
        return result
    finally:
        services.shutdown()


def child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The naive way: decode the whole image, then phash the full-size pixels."""
    import imagehash
    import scipy.fftpack  # noqa: F401 - phash imports it lazily; not part of the figure
    from PIL import Image

    with Image.open(io.BytesIO(tiny_jpeg())) as warm:
        warm.load()
        imagehash.phash(warm)
    result: dict[str, Any] = {}
    with _measured(result), Image.open(spec["path"]) as im:
        im.load()
        result["phash"] = str(imagehash.phash(im))
    return result


def child_main(kind: str) -> int:
    spec = json.loads(sys.stdin.read())
    try:
        result = child_ingest(spec) if kind == "ingest" else child_baseline(spec)
    except BenchError as exc:
        print(f"child {kind}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def _clean_env() -> dict[str, str]:
    """This environment without real Slack or Cloudinary settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLOUDINARY"))}


def run_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "_child", kind],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=_clean_env(),
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{kind} child took over {CHILD_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(
            f"{kind} child exited {proc.returncode}:\n{proc.stderr[-3000:]}{proc.stdout[-500:]}"
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result.get("peak_reset"):
        info("note: /proc/self/clear_refs not writable; peaks include the child's setup")
    return dict(result)


# --------------------------------------------------------------------------------------------
# The parent: emulator, per-image figures, the app under concurrent load


def start_slack():  # type: ignore[no-untyped-def]
    from tests.fakes.slack_api import SlackEmulator

    slack = SlackEmulator(team_id=TEAM, team_name="Bench Marketing")
    slack.add_user(ADMIN, "ana", real_name="Ana Admin", is_admin=True)
    slack.add_user(POSTER, "pat", real_name="Pat Photographer")
    slack.add_channel(CHANNEL, "bench-shoots", members=[ADMIN, POSTER, "UBOT"])
    return slack.start()


def add_file(slack: Any, file_id: str, path: Path) -> dict[str, Any]:
    jpeg = path.suffix == ".jpg"
    return dict(
        slack.add_file(
            file_id,
            name=path.name,
            content=path.read_bytes(),
            mimetype="image/jpeg" if jpeg else "image/png",
            filetype="jpg" if jpeg else "png",
            user=POSTER,
        )
    )


def app_environment(slack: Any, work: Path) -> dict[str, str]:
    """The env the tests give the app (tests.conftest.app_env), plus blanks that stop a
    stray .env from pointing the app at a real Cloudinary or public URL."""
    from tests.conftest import app_env

    env = app_env(
        database_url=f"sqlite:///{work / 'library.db'}", slack=slack, media_dir=work / "media"
    )
    env.update({"CLOUDINARY_URL": "", "PUBLIC_BASE_URL": ""})
    return env


def migrated_template(work: Path) -> Path:
    from storage import migrate
    from storage.db import make_engine

    path = work / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def per_image(
    slack: Any,
    *,
    files: dict[str, dict[str, Any]],
    paths: dict[str, Path],
    template: Path,
    work: Path,
    repeats: int,
) -> None:
    for shape in SHAPES:
        ours: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for n in range(repeats):
            run_dir = work / f"{shape.name}-{n}"
            run_dir.mkdir()
            shutil.copyfile(template, run_dir / "library.db")
            spec = {
                "env": app_environment(slack, run_dir),
                "file": files[shape.name],
                "warm_file": files["warm"],
            }
            ours.append(run_child("ingest", spec))
            base.append(run_child("baseline", {"path": str(paths[f"{shape.name}#0"])}))
            shutil.rmtree(run_dir, ignore_errors=True)
            info(
                f"{shape.name} run {n + 1}/{repeats}: ingest {ours[-1]['cpu_s']:.2f} s CPU, "
                f"peak {ours[-1]['peak_rss_kb'] / 1024:.0f} MB; naive decode "
                f"{base[-1]['cpu_s']:.2f} s CPU, peak {base[-1]['peak_rss_kb'] / 1024:.0f} MB"
            )
        s = shape.name
        cpu = median([r["cpu_s"] for r in ours])
        base_cpu = median([r["cpu_s"] for r in base])
        figure(f"file_mb_{s}", paths[f"{s}#0"].stat().st_size / MB, 1)
        figure(f"cpu_s_{s}", cpu, 3)
        figure(f"wall_s_{s}", median([r["wall_s"] for r in ours]), 3)
        figure(f"peak_rss_mb_{s}", median([r["peak_rss_kb"] / 1024 for r in ours]), 1)
        figure(f"rss_before_ingest_mb_{s}", median([r["rss_before_kb"] / 1024 for r in ours]), 1)
        figure(f"baseline_cpu_s_{s}", base_cpu, 3)
        figure(f"baseline_peak_rss_mb_{s}", median([r["peak_rss_kb"] / 1024 for r in base]), 1)
        figure(f"baseline_rss_before_mb_{s}", median([r["rss_before_kb"] / 1024 for r in base]), 1)
        figure(f"ratio_cpu_{s}", cpu / base_cpu if base_cpu > 0 else float("nan"), 2)
        decode = median([r["decode_cpu_s"] for r in ours])
        ratio = decode / base_cpu if base_cpu > 0 else float("nan")
        figure(f"decode_cpu_s_{s}", decode, 3)
        figure(f"ratio_decode_cpu_{s}", ratio, 2)
        verdict = "met" if ratio <= GOAL_CPU_RATIO[s] else "NOT met"
        info(f"goal: {s} decode + hash CPU {ratio:.2f} x naive <= {GOAL_CPU_RATIO[s]}: {verdict}")


class TreeSampler:
    """RSS of a process and all its descendants, summed, every SAMPLE_EVERY_S seconds."""

    def __init__(self, pid: int, *, limit_s: float) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self._limit_s = limit_s
        self._stop = threading.Event()
        self.peak = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def processes(self) -> list[Any]:
        import psutil

        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        import psutil

        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
        return total

    def hwm_sum(self) -> int:
        """Sum of each live process's own peak (VmHWM): an upper bound on the tree's peak."""
        total = 0
        for proc in self.processes():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                total += int(status.split("VmHWM:")[1].split()[0]) * 1024
        return total

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def job_states(db_path: Path) -> list[tuple[str, str | None]]:
    """Read-only look at the jobs (plain sqlite3: the app's engine would BEGIN IMMEDIATE)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return list(connection.execute("SELECT state, last_error FROM ingest_jobs"))
    finally:
        connection.close()


def wait_for(check: Callable[[], bool], *, timeout: float, every: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def concurrent_run(slack: Any, file_ids: list[str], template: Path, work: Path) -> dict[str, float]:
    """The real app (`python -m bot serve`, as tests.conftest.AppProcess starts it) receives
    five signed message events at once, each with one 48 MP JPEG."""
    from tests.conftest import SIGNING_SECRET, AppProcess, make_services
    from tests.fakes.signed import SlackSender

    work.mkdir()
    shutil.copyfile(template, work / "library.db")
    env = app_environment(slack, work)
    observer = make_services(env)
    watch(observer.factory, now=observer.clock())
    observer.shutdown()
    app = AppProcess(["serve"], env, work / "app.log")
    try:
        try:
            app.start(timeout=APP_START_TIMEOUT_S)
        except AssertionError as exc:
            raise BenchError(f"the app did not start: {exc}") from None
        assert app.process is not None
        sampler = TreeSampler(app.process.pid, limit_s=STORE_TIMEOUT_S + 30)
        time.sleep(1.0)  # let the scheduler's first ticks and lazy imports settle
        idle_samples = []
        for _ in range(5):
            idle_samples.append(sampler.rss())
            time.sleep(0.1)
        idle = median([float(v) for v in idle_samples])

        envelopes = [
            slack.message_event(channel=CHANNEL, user=POSTER, files=[fid]) for fid in file_ids
        ]
        sender = SlackSender(app.url + "/slack/events", SIGNING_SECRET)
        gate = threading.Barrier(len(envelopes) + 1, timeout=10)
        replies: list[Any] = [None] * len(envelopes)

        def deliver(i: int) -> None:
            gate.wait()
            try:
                replies[i] = sender.event(envelopes[i])
            except OSError as exc:
                replies[i] = exc

        threads = [
            threading.Thread(target=deliver, args=(i,), name=f"deliver-{i}")
            for i in range(len(envelopes))
        ]
        db_path = work / "library.db"
        failures: list[str] = []

        def all_stored() -> bool:
            states = job_states(db_path)
            failures[:] = [f"{state}: {error}" for state, error in states if error]
            stored = sum(1 for state, _ in states if state == "stored")
            return bool(failures) or stored == len(envelopes)

        with sampler:
            for thread in threads:
                thread.start()
            started = time.perf_counter()
            gate.wait()
            for thread in threads:
                thread.join(timeout=15)
            done = wait_for(all_stored, timeout=STORE_TIMEOUT_S, every=POLL_EVERY_S)
            elapsed = time.perf_counter() - started
        hwm = sampler.hwm_sum()
        bad = [r for r in replies if getattr(r, "status", None) != 200]
        if bad:
            raise BenchError(f"Slack events were not acknowledged with 200: {bad}")
        if failures:
            raise BenchError("ingest failed in the app: " + "; ".join(failures))
        if not done:
            states = job_states(db_path)
            raise BenchError(
                f"not all {len(envelopes)} images were stored within {STORE_TIMEOUT_S:.0f} s: "
                f"job states {states}"
            )
        return {
            "idle": idle / MB,
            "peak": sampler.peak / MB,
            "hwm_sum": hwm / MB,
            "all_stored_s": elapsed,
            "max_ack_s": max(r.elapsed for r in replies),
            "samples": sampler.samples,
        }
    except BenchError:
        if app.log_path.is_file():
            info("app log (tail):\n" + app.logs()[-3000:])
        raise
    finally:
        app.stop()


def thumbnail_run(slack: Any, file_id: str, template: Path, work: Path) -> dict[str, float]:
    """The real app ingests the 100 MP RGBA PNG, then Slack fetches its first preview: a
    signed `/media` thumbnail request (360 x 240, as search results ask for) to the app."""
    import urllib.request

    from tests.conftest import SIGNING_SECRET, AppProcess, make_services
    from tests.fakes.signed import SlackSender

    work.mkdir()
    shutil.copyfile(template, work / "library.db")
    env = app_environment(slack, work)
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['PORT']}"
    observer = make_services(env)
    watch(observer.factory, now=observer.clock())
    app = AppProcess(["serve"], env, work / "app.log")
    try:
        try:
            app.start(timeout=APP_START_TIMEOUT_S)
        except AssertionError as exc:
            raise BenchError(f"the app did not start: {exc}") from None
        assert app.process is not None
        sampler = TreeSampler(app.process.pid, limit_s=STORE_TIMEOUT_S + 60)
        time.sleep(1.0)
        idle = sampler.rss()
        db_path = work / "library.db"
        sender = SlackSender(app.url + "/slack/events", SIGNING_SECRET)
        with sampler:
            started = time.perf_counter()
            reply = sender.event(slack.message_event(channel=CHANNEL, user=POSTER, files=[file_id]))
            if getattr(reply, "status", None) != 200:
                raise BenchError(f"the event was not acknowledged with 200: {reply}")

            def stored() -> bool:
                return any(state in ("stored", "failed") for state, _ in job_states(db_path))

            if not wait_for(stored, timeout=STORE_TIMEOUT_S, every=POLL_EVERY_S):
                raise BenchError("the 100 MP PNG was not stored in time")
            states = job_states(db_path)
            if states[0][0] != "stored":
                raise BenchError(f"ingest of the 100 MP PNG failed: {states}")
            stored_s = time.perf_counter() - started
            connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
            try:
                (key,) = connection.execute("SELECT storage_key FROM images").fetchone()
            finally:
                connection.close()
            url = observer.media.thumbnail_url(key, width=360, height=240)
            if url is None:
                raise BenchError("the local store gave no thumbnail link")
            asked = time.perf_counter()
            if not url.startswith("http://127.0.0.1:"):
                raise BenchError(f"refusing to fetch a thumbnail from outside loopback: {url}")
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - checked
                body = response.read()
                if response.status != 200 or not body.startswith(b"\xff\xd8"):
                    raise BenchError(f"the thumbnail answer was {response.status}, not a JPEG")
            thumb_s = time.perf_counter() - asked
        return {
            "idle": idle / MB,
            "peak": sampler.peak / MB,
            "hwm_sum": sampler.hwm_sum() / MB,
            "stored_s": stored_s,
            "thumb_s": thumb_s,
            "thumb_kb": len(body) / 1024,
        }
    except BenchError:
        if app.log_path.is_file():
            info("app log (tail):\n" + app.logs()[-3000:])
        raise
    finally:
        app.stop()
        observer.shutdown()


def thumbnail_scenario(slack: Any, file_id: str, template: Path, work: Path) -> None:
    r = thumbnail_run(slack, file_id, template, work / "app-thumb")
    shutil.rmtree(work / "app-thumb", ignore_errors=True)
    figure("idle_rss_mb_app_thumb", r["idle"], 1)
    figure("peak_rss_mb_100mp_rgba_ingest_thumb", r["peak"], 1)
    figure("peak_hwm_sum_mb_100mp_rgba_ingest_thumb", r["hwm_sum"], 1)
    figure("stored_s_100mp_rgba", r["stored_s"], 2)
    figure("first_thumb_s_100mp_rgba", r["thumb_s"], 3)
    verdict = "met" if r["peak"] < GOAL_THUMB_MB else "NOT met"
    info(
        f"goal: 100 MP RGBA ingest + thumbnail peak {r['peak']:.0f} MB < {GOAL_THUMB_MB}: {verdict}"
    )


def concurrent(
    slack: Any,
    files: dict[str, dict[str, Any]],
    template: Path,
    work: Path,
    repeats: int,
    *,
    shape: str,
    label: str,
) -> None:
    ids = [files[f"{shape}#{v}"]["id"] for v in range(CONCURRENT)]
    runs = []
    for n in range(repeats):
        runs.append(concurrent_run(slack, ids, template, work / f"app-{label}-{n}"))
        shutil.rmtree(work / f"app-{label}-{n}", ignore_errors=True)
        r = runs[-1]
        info(
            f"{label} run {n + 1}/{repeats}: idle {r['idle']:.0f} MB, peak {r['peak']:.0f} MB "
            f"({r['samples']} samples), all stored in {r['all_stored_s']:.2f} s"
        )
    # Memory is a limit, so the worst run is the figure; times are medians.
    if shape == "48mp_jpeg":
        figure("idle_rss_mb_app", median([r["idle"] for r in runs]), 1)
    figure(f"peak_rss_mb_{label}_concurrent", max(r["peak"] for r in runs), 1)
    figure(f"peak_hwm_sum_mb_{label}", max(r["hwm_sum"] for r in runs), 1)
    figure(f"all_stored_s_{label}", median([r["all_stored_s"] for r in runs]), 2)
    figure(f"max_ack_s_{label}", max(r["max_ack_s"] for r in runs), 3)
    peak = max(r["peak"] for r in runs)
    verdict = "met" if peak < GOAL_MB else "NOT met"
    info(f"goal: {label} concurrent peak {peak:.0f} MB < {GOAL_MB} MB: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat instead of 3 (< 60 s)")
    parser.add_argument("--repeats", type=int, help="repeats per per-image figure")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    if not 1 <= repeats <= 20:
        parser.error("--repeats must be between 1 and 20")
    concurrent_repeats = 1 if args.quick else 3

    started = time.perf_counter()
    try:
        paths = ensure_images()
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            work = Path(tmp)
            template = migrated_template(work)
            slack = start_slack()
            try:
                warm = work / "warm.jpg"
                warm.write_bytes(tiny_jpeg())
                files = {"warm": add_file(slack, "F0WARM", warm)}
                add_file(slack, "F0RGBA100MP", ensure_big_rgba_png())
                for shape in SHAPES:
                    files[shape.name] = add_file(
                        slack, f"F0{shape.name.upper()}", paths[f"{shape.name}#0"]
                    )
                for shape_name in CONCURRENT_SHAPES:
                    for v in range(CONCURRENT):
                        key = f"{shape_name}#{v}"
                        files[key] = add_file(slack, f"F0C{shape_name.upper()}{v}", paths[key])
                per_image(
                    slack, files=files, paths=paths, template=template, work=work, repeats=repeats
                )
                concurrent(
                    slack,
                    files,
                    template,
                    work,
                    concurrent_repeats,
                    shape="48mp_jpeg",
                    label="5x48mp",
                )
                concurrent(slack, files, template, work, 1, shape="60mp_png", label="5x60mp_png")
                thumbnail_scenario(slack, "F0RGBA100MP", template, work)
            finally:
                slack.stop()
    except BenchError as exc:
        info(f"FAILED: {exc}")
        return 1
    info(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_child":
        sys.exit(child_main(sys.argv[2]))
    sys.exit(main())

"""thumbor (a thumbnail service large sites run) as a box cropper, through its ``/meta`` endpoint.

``thumbor`` starts a thumbor server for the run's duration: loopback, a free port, its own
config (:data:`CONFIG`: face detector, then feature detector when no face is found; a file
loader rooted in the server's temporary folder, where each image is written as PNG; a file
storage there keeps each image's focal points, no result storage), log kept in that folder.
For each aspect ratio (height/width) it asks ``/unsafe/meta/WxH/smart/IMAGE`` for the largest
box of that ratio (Twitter's crop size, as for the libvips croppers) and reads thumbor's
``crop`` operation (the box, in source pixels) and its focal points (their weighted centre, the
point thumbor centred on, is the cropping's ``focus``).
``thumbor+http://HOST:PORT#root=FOLDER`` uses a server the user runs, whose file loader is
rooted in ``FOLDER`` (cropaudit writes the images there).

thumbor 7.8 pins ``Pillow<13`` and its ``opencv`` extra installs ``opencv-python-headless``,
whose ``cv2`` would overwrite the ``opencv-contrib-python-headless`` build the croppers extra
needs, so thumbor runs from its own venv (:data:`VENV_REQUIREMENTS`; ``$CROPAUDIT_THUMBOR_VENV``,
default ``thumbor-venv`` inside cropaudit's environment), created on first use
(``python -m cropaudit.model.croppers.thumbor`` makes it ahead; ``make test`` does).

The server is the run's own: started by :meth:`ThumborServer.start`, stopped by
:meth:`ThumborServer.stop`, by garbage collection and at interpreter exit (``weakref.finalize``),
and, if cropaudit is killed outright, by a watchdog thread inside the server process that exits
when its parent is gone. Only that process is ever signalled. An unreachable server or an answer
without a usable crop is a dead letter with its reason (``http_error``, ``timeout``,
``malformed_response``), as for the HTTP cropper (:mod:`cropaudit.model.plugin`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from cropaudit.engine.flink_local import free_port
from cropaudit.errors import UserError
from cropaudit.model.cropper import BoxCropper, LoadedCropper, crop_or_error
from cropaudit.model.croppers.vips import largest_box
from cropaudit.model.plugin import CropperError, HttpSettings, image_key, png_bytes, send
from cropaudit.schemas.records import Box, Cropping

log = logging.getLogger(__name__)

SPEC = "thumbor"
USER_PREFIX = "thumbor+"
VENV_ENV = "CROPAUDIT_THUMBOR_VENV"
#: What thumbor's own venv holds (thumbor's detectors import ``cv2`` and ``numpy``).
VENV_REQUIREMENTS = ("thumbor==7.8.0", "opencv-python-headless==4.14.0.94", "numpy>=1.26,<2.5")
#: Distributions whose versions are recorded with every row.
RECORDED = ("thumbor", "opencv-python-headless", "pillow", "numpy", "tornado")
#: The server's config; the loader's and storage's folders are added per server.
CONFIG: Mapping[str, Any] = {
    "LOADER": "thumbor.loaders.file_loader",
    "DETECTORS": ["thumbor.detectors.face_detector", "thumbor.detectors.feature_detector"],
    "FACE_DETECTOR_CASCADE_FILE": "haarcascade_frontalface_alt.xml",
    "ENGINE": "thumbor.engines.pil",
    "ALLOW_UNSAFE_URL": True,
    # detector results kept per image, so the ratios after the first reuse its focal points
    "STORAGE": "thumbor.storages.file_storage",
    "RESULT_STORAGE": None,
    "RESPECT_ORIENTATION": False,
    "MAX_WIDTH": 0,
    "MAX_HEIGHT": 0,
    "IGNORE_SMART_ERRORS": False,
}
#: Client settings: detection on a 583x3000 composite takes a fraction of a second.
HTTP = HttpSettings(timeout=60.0, attempts=3, backoff=0.5, concurrency=2)
START_TIMEOUT = 60.0
#: Runs in the server process: thumbor's own ``main``, plus a watchdog that ends the process
#: when the cropaudit process that started it is gone (even after SIGKILL).
_SERVE = """
import os, sys, threading, time
parent = int(sys.argv[1])
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from thumbor.server import main
sys.exit(main(sys.argv[2:]))
"""


def venv_dir() -> Path:
    return Path(os.environ.get(VENV_ENV) or Path(sys.prefix) / "thumbor-venv")


def venv_python() -> Path:
    """thumbor's venv's python, creating the venv (from PyPI) when it is missing."""
    folder = venv_dir()
    python = folder / "bin" / "python"
    marker = folder / ".cropaudit-thumbor"
    wanted = "\n".join(VENV_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"cropaudit: creating thumbor's own venv at {folder} (once)", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", *VENV_REQUIREMENTS]
        subprocess.run(pip, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UserError(f"could not create thumbor's venv at {folder}: {exc}") from None
    marker.write_text(wanted)
    return python


def venv_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{d: m.version(d) for d in {list(RECORDED)!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _stop(process: subprocess.Popen, *folders: Path) -> None:
    """End the server this cropper started (only it) and drop the images; keep config and log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


class ThumborServer:
    """One thumbor process on 127.0.0.1, its config, images and log in its own folder."""

    def __init__(self, python: Path, folder: str | None = None) -> None:
        self.python = python
        self.folder = Path(folder or tempfile.mkdtemp(prefix="cropaudit-thumbor-"))
        self.images = self.folder / "images"
        self.storage = self.folder / "storage"
        self.log_path = self.folder / "thumbor.log"
        self.url = ""
        self.startup_s = float("nan")
        self._process: subprocess.Popen | None = None
        self._finalizer = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def config_text(self) -> str:
        config = {
            **CONFIG,
            "FILE_LOADER_ROOT_PATH": str(self.images),
            "FILE_STORAGE_ROOT_PATH": str(self.storage),
        }
        return "".join(f"{k} = {v!r}\n" for k, v in config.items())

    def start(self, attempts: int = 3) -> ThumborServer:
        """Start it and wait until ``/healthcheck`` answers; a port taken meanwhile is retried."""
        self.images.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "thumbor.conf"
        conf.write_text(self.config_text())
        began = time.monotonic()
        for _ in range(attempts):
            port = free_port()
            argv = [str(self.python), "-c", _SERVE, str(os.getpid()), "--ip", "127.0.0.1",
                    "--port", str(port), "--conf", str(conf), "--log-level", "info"]  # fmt: skip
            with open(self.log_path, "ab") as logfile:
                self._process = subprocess.Popen(
                    argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            self._finalizer = weakref.finalize(
                self, _stop, self._process, self.images, self.storage
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_healthy(began + START_TIMEOUT):
                self.startup_s = time.monotonic() - began
                log.info("thumbor %s (pid %d), log %s", self.url, self.pid, self.log_path)
                return self
            self._finalizer()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise UserError(f"thumbor did not start (log {self.log_path}):\n{tail}")

    def _wait_healthy(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/healthcheck", timeout=2) as answer:
                    if answer.read().strip() == b"WORKING":
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> ThumborServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_meta(raw: bytes, width: int, height: int) -> tuple[Box, tuple[int, int] | None]:
    """thumbor's ``/meta`` answer -> the crop box (the whole image when it did not crop) and
    the weighted centre of its focal points; ``CropperError`` when malformed."""
    try:
        meta = json.loads(raw)["thumbor"]
        crops = [op for op in meta["operations"] if op["type"] == "crop"]
        if len(crops) > 1:
            raise ValueError(f"{len(crops)} crop operations")
        if crops:
            c = crops[0]
            left, top, right, bottom = (int(c[k]) for k in ("left", "top", "right", "bottom"))
            box = Box(left, top, right - left, bottom - top)
        else:
            box = Box(0, 0, width, height)
        points = [(float(p["x"]), float(p["y"]), float(p["z"])) for p in meta["focal_points"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CropperError("malformed_response", f"thumbor answered {raw[:200]!r}: {exc}") from None
    weight = sum(z for _, _, z in points)
    if not points or weight <= 0:
        return box, None
    cx = sum(x * z for x, _, z in points) / weight
    cy = sum(y * z for _, y, z in points) / weight
    return box, (int(round(cx)), int(round(cy)))


class _Loaded(LoadedCropper):
    def __init__(self, url: str, root: Path, server: ThumborServer | None = None) -> None:
        self.url = url
        self.root = root
        self.server = server  # kept alive (and stopped) with this object
        self._pool = ThreadPoolExecutor(HTTP.concurrency, thread_name_prefix="cropaudit-thumbor")

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        name = f"{image_key(image)}.png"
        path = self.root / name
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(png_bytes(image))
            partial.replace(path)
        height, width = image.shape[:2]
        boxes, focus = [], []
        for ar in ratios:
            w, h = largest_box(width, height, ar)
            url = f"{self.url}/unsafe/meta/{w}x{h}/smart/{urllib.parse.quote(name)}"
            raw = send("GET", url, None, {}, HTTP, self.url)
            box, point = parse_meta(raw, width, height)
            boxes.append(box)
            focus.append(point)
        return Cropping(tuple(float(r) for r in ratios), tuple(boxes), focus=tuple(focus))

    def crop_many(self, images: Sequence[np.ndarray], ratios: tuple[float, ...]) -> list:
        return list(self._pool.map(lambda im: crop_or_error(self.crop, im, ratios), images))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.server is not None:
            self.server.stop()


class ThumborCropper(BoxCropper):
    """``thumbor`` (a server of its own per worker) or ``thumbor+http://HOST:PORT#root=DIR``."""

    def __init__(self, spec: str = SPEC) -> None:
        self.name = SPEC
        self.user_url, self.user_root = "", ""
        if spec != SPEC:
            self._parse_user(spec)
            self.versions = {"thumbor": "unknown (the user's server)"}
        else:
            self.versions = venv_versions(venv_python())

    def _parse_user(self, spec: str) -> None:
        url, _, fragment = spec[len(USER_PREFIX) :].partition("#")
        parsed = urllib.parse.urlsplit(url)
        root = dict(urllib.parse.parse_qsl(fragment)).get("root", "")
        if parsed.scheme != "http" or not parsed.netloc or parsed.path.strip("/"):
            raise UserError(f"{spec!r}: a user's thumbor is thumbor+http://HOST:PORT#root=DIR")
        if not root or not os.path.isdir(root):
            raise UserError(
                f"{spec!r}: #root=DIR must name the existing folder the server's file loader "
                "reads (FILE_LOADER_ROOT_PATH); cropaudit writes the images there"
            )
        self.user_url, self.user_root = url.rstrip("/"), root

    @property
    def source(self) -> str:
        if self.user_url:
            return f"thumbor at {self.user_url} (the user's server)"
        return "pypi:" + "; ".join(f"{d}=={v}" for d, v in self.versions.items())

    def settings(self) -> Mapping[str, Any]:
        managed = {} if self.user_url else {"config": dict(CONFIG)}
        return {
            "endpoint": "/unsafe/meta/WxH/smart/IMAGE",
            "box": "largest box of each aspect ratio (Twitter's crop size)",
            "image": "PNG of the composite's own pixels",
            "versions": self.versions,
            "client": asdict(HTTP),
            **managed,
        }

    def load_model(self) -> LoadedCropper:
        if self.user_url:
            return _Loaded(self.user_url, Path(self.user_root))
        server = ThumborServer(venv_python()).start()
        return _Loaded(server.url, server.images, server)


def startup_seconds() -> float:
    """Seconds from launch to a healthy server (for the benchmark)."""
    server = ThumborServer(venv_python()).start()
    try:
        return server.startup_s
    finally:
        server.stop()


if __name__ == "__main__":  # python -m cropaudit.model.croppers.thumbor: create the venv
    print(venv_python())

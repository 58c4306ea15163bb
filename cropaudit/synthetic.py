"""A deterministic synthetic face set for the demo and the tests (no downloads, no real people).

Faces are drawn cartoons: an oval head of one of two ``tone`` values and one of two ``hair``
styles, with per-subject jitter and a little per-photo variation. Everything derives from the
seed, so the same seed writes the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cropaudit.csvcells import csv_text

TONES = {"light": (232, 196, 170), "dark": (120, 82, 60)}
HAIRS = ("short", "long")
SIZE = (300, 400)  # width, height of each photo


def _subject_rng(seed: int, subject: str) -> np.random.Generator:
    key = int.from_bytes(subject.encode()[:16].ljust(16, b"\0"), "little") ^ seed
    return np.random.default_rng(key)


def draw_face(seed: int, tone: str, hair: str, subject: str, photo: int) -> Image.Image:
    """One photo of one synthetic subject."""
    rng = _subject_rng(seed, subject)
    w, h = SIZE
    background = tuple(int(c) for c in rng.integers(150, 230, 3))
    skin = np.clip(np.array(TONES[tone]) + rng.integers(-15, 16, 3), 0, 255)
    hair_colour = tuple(int(c) for c in rng.integers(10, 90, 3))
    head_w, head_h = int(rng.integers(150, 190)), int(rng.integers(200, 240))
    photo_rng = np.random.default_rng([seed, photo, len(subject)])
    dx, dy = (int(v) for v in photo_rng.integers(-12, 13, 2))
    cx, cy = w // 2 + dx, h // 2 + 20 + dy
    img = Image.new("RGB", SIZE, background)
    d = ImageDraw.Draw(img)
    if hair == "long":
        d.rectangle(
            [cx - head_w // 2 - 18, cy - head_h // 2, cx + head_w // 2 + 18, h], hair_colour
        )
    d.ellipse(
        [cx - head_w // 2, cy - head_h // 2, cx + head_w // 2, cy + head_h // 2],
        tuple(int(c) for c in skin),
    )
    d.chord([cx - head_w // 2, cy - head_h // 2 - 10, cx + head_w // 2, cy], 180, 360, hair_colour)
    for ex in (cx - head_w // 5, cx + head_w // 5):
        d.ellipse([ex - 12, cy - 22, ex + 12, cy - 6], (250, 250, 250))
        d.ellipse([ex - 5, cy - 19, ex + 5, cy - 9], (30, 30, 30))
    d.arc([cx - 30, cy + 30, cx + 30, cy + 65], 20, 160, (120, 30, 30), width=4)
    noise = photo_rng.normal(0, 6, (h, w, 3))
    arr = np.clip(np.asarray(img.filter(ImageFilter.GaussianBlur(1)), np.float64) + noise, 0, 255)
    return Image.fromarray(arr.astype(np.uint8))


def write_face_set(
    out_dir: str | Path, seed: int = 0, subjects_per_group: int = 6, photos_per_subject: int = 2
) -> Path:
    """Write the photos as JPEGs and a CSV manifest (image_uri relative to it); returns its path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for tone in TONES:
        for hair in HAIRS:
            for s in range(subjects_per_group):
                subject = f"{tone}-{hair}-{s:02d}"
                for photo in range(photos_per_subject):
                    name = f"{subject}-{photo}.jpg"
                    buf = io.BytesIO()
                    draw_face(seed, tone, hair, subject, photo).save(buf, "JPEG", quality=90)
                    (out / "images" / name).write_bytes(buf.getvalue())
                    rows.append(
                        {
                            "image_id": name[:-4],
                            "image_uri": f"images/{name}",
                            "subject_id": subject,
                            "tone": tone,
                            "hair": hair,
                        }
                    )
    return write_manifest_csv(out / "manifest.csv", rows)


def write_manifest_csv(path: Path, rows: list[dict]) -> Path:
    """A synthetic set's CSV manifest (columns from the first row; cells that a spreadsheet
    would read as formulas neutralised, :mod:`cropaudit.csvcells`); returns ``path``."""
    columns = list(rows[0])
    path.write_text(csv_text([columns, *([r[c] for c in columns] for r in rows)]))
    return path

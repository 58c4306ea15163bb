"""Deterministic synthetic full-body figures for the single-image demo (no downloads, no people).

Each figure is one of the demo's cartoon faces (:func:`cropaudit.synthetic.draw_face`, cut out
along the head) on a drawn body: a pose (arms down, one arm raised, arms out), a size (the
figure 55-92% of the image height, anywhere across it), clothing of one muted colour, plain
or loudly striped, on a background (plain wall, gradient, faint wallpaper, wall and floor). The
face box is known exactly (the pasted head's bounding box). A gender-like label (``gender``:
``female`` figures wear a dress, ``male`` ones a shirt and trousers) and a couple of images per
subject
(the same person and outfit, another pose, size and background).

The generator gives loud clothing to ``female`` figures more often (:data:`LOUD_SHARE`), so the
demo has a difference for the analysis to find: a contrast-driven cropper lands on a loud
shirt rather than the face. That is a property of these drawings, chosen to show how the
analysis reads a difference; it says nothing about any cropper on real people.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cropaudit.synthetic import TONES, _subject_rng, draw_face, write_manifest_csv

GENDERS = ("female", "male")
#: Share of each group's subjects whose clothing is loudly striped.
LOUD_SHARE = {"female": 0.8, "male": 0.1}
SIZE = (240, 480)  # width, height of each image
POSES = ("down", "raised", "out")
BACKGROUNDS = ("plain", "gradient", "wallpaper", "floor")
#: The head's cut-out from a 300x400 demo face: inside every head whatever its jitter.
HEAD_CENTRE, HEAD_AXES = (150, 220), (62, 86)


def _head(seed: int, tone: str, hair: str, subject: str, photo: int) -> Image.Image:
    """The demo face cut out along an ellipse inside the head (RGBA, transparent outside)."""
    face = draw_face(seed, tone, hair, subject, photo).convert("RGBA")
    (cx, cy), (ax, ay) = HEAD_CENTRE, HEAD_AXES
    box = (cx - ax, cy - ay, cx + ax, cy + ay)
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse(box, 255)
    face.putalpha(mask)
    return face.crop(box)


def _background(rng: np.random.Generator, kind: str) -> Image.Image:
    w, h = SIZE
    base = rng.integers(120, 220, 3)
    if kind == "plain":
        arr = np.broadcast_to(base, (h, w, 3)).astype(float)
    elif kind == "gradient":
        other = rng.integers(120, 220, 3)
        t = np.linspace(0, 1, h)[:, None, None]
        arr = np.broadcast_to(base * (1 - t) + other * t, (h, w, 3)).astype(float)
    elif kind == "wallpaper":  # faint vertical stripes
        stripe = ((np.arange(w) // 12) % 2)[None, :, None] * 10.0
        arr = np.broadcast_to(base, (h, w, 3)) + stripe
    else:  # wall and floor
        arr = np.broadcast_to(base, (h, w, 3)).astype(float).copy()
        arr[int(h * 0.8) :] = rng.integers(60, 140, 3)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _clothing(colour: tuple[int, int, int], loud: bool, size: tuple[int, int]) -> Image.Image:
    """A clothing swatch: one colour, or black and white stripes over it when ``loud``."""
    w, h = size
    arr = np.broadcast_to(np.array(colour, float), (h, w, 3)).copy()
    if loud:
        rows = (np.arange(h) // 5) % 2 == 0
        arr[rows] = 15.0
        arr[~rows] = 245.0
    return Image.fromarray(arr.astype(np.uint8))


def draw_figure(
    seed: int, gender: str, tone: str, subject: str, photo: int
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One image of one synthetic person; returns it and its face box (x, y, w, h)."""
    person = _subject_rng(seed, subject)  # the same person and outfit in every photo
    # muted colours: a plain outfit draws the eye less than a face; a loud one more
    colour = tuple(int(c) for c in int(person.integers(90, 180)) + person.integers(-25, 26, 3))
    loud = bool(person.random() < LOUD_SHARE[gender])
    shot = np.random.default_rng([seed, photo, *subject.encode()])
    w, h = SIZE
    img = _background(shot, BACKGROUNDS[int(shot.integers(len(BACKGROUNDS)))])
    fig_h = int(h * shot.uniform(0.55, 0.92))
    head_h = int(fig_h * 0.18)
    head_w = int(head_h * HEAD_AXES[0] / HEAD_AXES[1])
    shoulder = int(fig_h * 0.26)
    cx = int(shot.integers(shoulder // 2 + 8, w - shoulder // 2 - 8))
    top = h - fig_h - int(shot.integers(0, h - fig_h + 1) * 0.5)
    neck, waist, hip = top + head_h, top + int(fig_h * 0.5), top + int(fig_h * 0.58)
    feet = top + fig_h
    skin = tuple(int(c) for c in TONES[tone])
    d = ImageDraw.Draw(img)
    # legs, then clothing over them, then arms in the pose
    leg = max(shoulder // 5, 3)
    trousers = colour if gender == "male" else skin
    for side in (-1, 1):
        x = cx + side * shoulder // 5
        d.line([(x, hip), (x, feet)], fill=trousers, width=leg)
    bottom = hip if gender == "male" else top + int(fig_h * 0.78)
    torso = [(cx - shoulder // 2, neck), (cx + shoulder // 2, neck)]
    flare = shoulder // 2 + (int(fig_h * 0.08) if gender == "female" else 0)
    torso += [(cx + flare, bottom), (cx - flare, bottom)]
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).polygon(torso, 255)
    img.paste(_clothing(colour, loud, SIZE), (0, 0), mask)
    pose = POSES[int(shot.integers(len(POSES)))]
    arm = max(shoulder // 6, 3)
    for side in (-1, 1):
        sx = cx + side * shoulder // 2
        if pose == "out" or (pose == "raised" and side == 1):
            end = (
                sx + side * int(fig_h * 0.2),
                neck - (int(fig_h * 0.12) if pose == "raised" else 0),
            )
        else:
            end = (sx + side * arm, waist)
        d.line([(sx, neck + arm), end], fill=skin, width=arm)
    head = _head(seed, tone, "long" if gender == "female" else "short", subject, photo)
    head = head.resize((head_w, head_h), Image.LANCZOS)
    box = (cx - head_w // 2, top, head_w, head_h)
    img.paste(head, box[:2], head)
    return img, box


def write_figure_set(
    out_dir: str | Path, seed: int = 0, subjects_per_group: int = 20, photos_per_subject: int = 2
) -> Path:
    """Write the figures as PNGs and a CSV manifest with face boxes (image_uri relative to it);
    returns its path. The same seed writes the same bytes."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    tones = list(TONES)
    for gender in GENDERS:
        for s in range(subjects_per_group):
            subject = f"{gender}-{s:02d}"
            tone = tones[s % len(tones)]
            for photo in range(photos_per_subject):
                name = f"{subject}-{photo}.png"
                img, (x, y, fw, fh) = draw_figure(seed, gender, tone, subject, photo)
                buf = io.BytesIO()
                img.save(buf, "PNG")
                (out / "images" / name).write_bytes(buf.getvalue())
                rows.append(
                    {
                        "image_id": name[:-4], "image_uri": f"images/{name}",
                        "subject_id": subject, "gender": gender, "tone": tone,
                        "face_x": x, "face_y": y, "face_w": fw, "face_h": fh,
                    }
                )  # fmt: skip
    return write_manifest_csv(out / "manifest.csv", rows)

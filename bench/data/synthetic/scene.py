"""Procedural street scenes for the synthetic dataset: one deterministic (image, label) pair per rng.

The scenes are built to separate segmentation heads, not to look real:
- large regions (road, sidewalk, building, vegetation, terrain, sky) with class-specific textures whose
  colour distributions overlap (grey road vs grey sidewalk vs overcast sky, green vegetation vs terrain),
  so colour alone does not solve it;
- small objects (cars, persons) whose size follows the perspective, with a random colour per instance;
- thin structures: poles 1-3 px wide and overhead wires 1-2 px wide, where stride-8/16 heads lose pixels
  and boundary quality differs between heads;
- image noise, a smooth illumination field and a slight blur (labels stay crisp), and sometimes an ignore
  region at the bottom (an "ego vehicle", label 255).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.data.classes import SYNTHETIC_CLASSES
from bench.data.labels import IGNORE_INDEX

ROAD, SIDEWALK, BUILDING, VEGETATION, TERRAIN, SKY, CAR, PERSON, POLE, WIRE = range(len(SYNTHETIC_CLASSES))


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1]: a random grid with `cell`-pixel spacing, bilinearly upsampled (float32 HxW)."""
    gh, gw = max(2, int(round(height / cell)) + 1), max(2, int(round(width / cell)) + 1)
    grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32), mode="F")
    return np.asarray(grid.resize((width, height), Image.BILINEAR), dtype=np.float32)


class _Layout:
    """Geometry of one scene: horizon, road and sidewalk edges as functions of the image row."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.h, self.w = height, width
        self.horizon = int(height * rng.uniform(0.35, 0.55))
        self.vx = width * rng.uniform(0.3, 0.7)
        self.road_half = (width * rng.uniform(0.35, 0.7), width * rng.uniform(0.01, 0.03))  # at bottom, horizon
        self.walk = (width * rng.uniform(0.12, 0.3), width * rng.uniform(0.005, 0.02))

    def depth(self, y: float) -> float:
        """0 at the horizon, 1 at the bottom row."""
        return float(np.clip((y - self.horizon) / max(1, self.h - 1 - self.horizon), 0, 1))

    def road_edges(self, y: float) -> tuple[float, float]:
        t = self.depth(y)
        half = self.road_half[1] + t * (self.road_half[0] - self.road_half[1])
        return self.vx - half, self.vx + half

    def walk_width(self, y: float) -> float:
        t = self.depth(y)
        return self.walk[1] + t * (self.walk[0] - self.walk[1])


def _draw_label(rng: np.random.Generator, lay: _Layout) -> tuple[np.ndarray, np.ndarray, list]:
    """Label map, instance map (cars/persons get ids 1..) and instance classes."""
    h, w, hz = lay.h, lay.w, lay.horizon
    label = Image.new("L", (w, h), SKY)
    draw = ImageDraw.Draw(label)

    # Buildings: a row of blocks with varied roof lines and gaps showing the sky.
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = w * rng.uniform(0.07, 0.22)
        if rng.random() > 0.15:
            top = rng.uniform(0.03, 0.85) * hz
            draw.rectangle([int(x), int(top), int(x + bw), hz + 2], fill=BUILDING)
            if rng.random() < 0.3:  # pitched roof
                draw.polygon([(int(x), int(top)), (int(x + bw), int(top)),
                              (int(x + bw / 2), int(top - rng.uniform(0.05, 0.15) * hz))], fill=BUILDING)
        x += bw

    # Ground: terrain, then the sidewalk trapezoid, then the road inside it.
    draw.rectangle([0, hz, w, h], fill=TERRAIN)
    ys = (hz, h + 1)
    left = [lay.road_edges(y)[0] - lay.walk_width(y) for y in ys]
    right = [lay.road_edges(y)[1] + lay.walk_width(y) for y in ys]
    draw.polygon([(left[0], ys[0]), (right[0], ys[0]), (right[1], ys[1]), (left[1], ys[1])], fill=SIDEWALK)
    road = [lay.road_edges(y) for y in ys]
    draw.polygon([(road[0][0], ys[0]), (road[0][1], ys[0]), (road[1][1], ys[1]), (road[1][0], ys[1])], fill=ROAD)
    lab = np.asarray(label).copy()

    # Vegetation: thresholded noise in a band around the horizon and in patches on the terrain.
    noise = smooth_noise(rng, h, w, cell=h / rng.uniform(4, 8))
    yy = np.arange(h, dtype=np.float32)[:, None]
    band_top = hz - (0.25 + 0.35 * smooth_noise(rng, 1, w, cell=w / 6)[0]) * hz
    in_band = (yy >= band_top[None, :]) & (yy <= hz + 0.08 * h)
    veg = in_band & (noise > rng.uniform(0.45, 0.65))
    veg |= (lab == TERRAIN) & (noise > rng.uniform(0.55, 0.75))
    lab[veg & (lab != ROAD) & (lab != SIDEWALK)] = VEGETATION
    label = Image.fromarray(lab, mode="L")
    draw = ImageDraw.Draw(label)

    # Poles on the outer sidewalk edges, 1-3 px wide (wider when near), with the tops kept for the wires.
    tops = []
    for _ in range(int(rng.integers(2, 6))):
        t = rng.uniform(0.1, 0.95)
        yb = hz + t * (h - 1 - hz)
        side = rng.choice([-1, 1])
        lo, hi = lay.road_edges(yb)
        offset = lay.walk_width(yb) * rng.uniform(0.2, 0.9)
        xb = lo - offset if side < 0 else hi + offset
        if not 0 <= xb < w - 3:
            continue
        width = 1 + min(2, int(t * 3))
        height = (yb - hz) * rng.uniform(2.0, 3.5) + 0.1 * h
        top = max(0.0, yb - height)
        draw.rectangle([int(xb), int(top), int(xb) + width - 1, int(yb)], fill=POLE)
        tops.append((int(xb) + width // 2, int(top)))

    # Wires: sagging curves between pole tops and across the image, 1 px (sometimes 2).
    tops.sort()
    spans = list(zip(tops, tops[1:]))
    for _ in range(int(rng.integers(1, 3))):
        y0, y1 = rng.uniform(0.05, 0.6) * hz, rng.uniform(0.05, 0.6) * hz
        spans.append(((-2, int(y0)), (w + 2, int(y1))))
    for (xa, ya), (xb, yb) in spans:
        sag = rng.uniform(0.02, 0.12) * h
        s = np.linspace(0.0, 1.0, max(8, abs(xb - xa) // 4))
        pts = [(float(xa + (xb - xa) * u), float(ya + (yb - ya) * u + sag * 4 * u * (1 - u))) for u in s]
        draw.line(pts, fill=WIRE, width=1 if rng.random() < 0.75 else 2)

    # Cars on the road and persons on the sidewalks, far ones first so near ones occlude them.
    instances = Image.new("L", (w, h), 0)
    idraw = ImageDraw.Draw(instances)
    objects = [(CAR, hz + rng.uniform(0.05, 1.0) * (h - hz)) for _ in range(int(rng.integers(1, 6)))]
    objects += [(PERSON, hz + rng.uniform(0.05, 1.0) * (h - hz)) for _ in range(int(rng.integers(0, 5)))]
    objects.sort(key=lambda o: o[1])
    kinds = []
    for cls, yb in objects:
        lo, hi = lay.road_edges(yb)
        if cls == CAR:
            cw = (hi - lo) * rng.uniform(0.18, 0.32)
            ch = cw * rng.uniform(0.45, 0.65)
            x0 = rng.uniform(lo, max(lo, hi - cw))
            body = [x0, yb - ch * 0.6, x0 + cw, yb]
            cabin = [x0 + cw * 0.2, yb - ch, x0 + cw * 0.8, yb - ch * 0.55]
            shapes = [("rect", body), ("rect", cabin)]
        else:
            ph = (lay.depth(yb) * 0.3 * lay.h + 4) * rng.uniform(0.7, 1.1)
            pw = max(2.0, ph * 0.3)
            side = rng.choice([-1, 1])
            offset = lay.walk_width(yb) * rng.uniform(0.1, 0.9)
            x0 = lo - offset if side < 0 else hi + offset - pw
            head = pw * 0.8
            shapes = [("ellipse", [x0 + pw / 2 - head / 2, yb - ph, x0 + pw / 2 + head / 2, yb - ph + head]),
                      ("rect", [x0, yb - ph + head * 0.9, x0 + pw, yb])]
        kinds.append(cls)
        for kind, box in shapes:
            box = [int(round(v)) for v in box]
            if box[2] < box[0] or box[3] < box[1]:
                continue
            (draw.rectangle if kind == "rect" else draw.ellipse)(box, fill=cls)
            (idraw.rectangle if kind == "rect" else idraw.ellipse)(box, fill=len(kinds))
    lab = np.asarray(label).copy()
    inst = np.asarray(instances).copy()
    inst[(lab != CAR) & (lab != PERSON)] = 0  # ids only where a car/person is visible

    # Sometimes an ignored "ego vehicle" at the bottom.
    if rng.random() < 0.4:
        hood = Image.new("L", (w, h), 0)
        top = h - rng.uniform(0.04, 0.1) * h
        ImageDraw.Draw(hood).ellipse([-0.2 * w, top, 1.2 * w, h + (h - top)], fill=1)
        lab[np.asarray(hood) > 0] = IGNORE_INDEX
    return lab, inst, kinds


def _textures(rng: np.random.Generator, lay: _Layout, inst: np.ndarray, kinds: list) -> dict[int, np.ndarray]:
    """A float32 HxWx3 image per class; colour statistics overlap on purpose."""
    h, w = lay.h, lay.w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def flat(mean, sigma):
        return np.asarray(mean, np.float32) + rng.normal(0, sigma, (h, w, 3)).astype(np.float32)

    def grey(lo, hi, tint=8):
        g = rng.uniform(lo, hi)
        return [g + rng.uniform(-tint, tint) for _ in range(3)]

    tex = {}
    road = flat(grey(65, 120), 7) + 25 * (smooth_noise(rng, h, w, h / 10)[..., None] - 0.5)
    # dashed lane marking (still "road"): bright, thin, along the road's centre line
    dash = (np.abs(xx - (lay.vx + (yy - lay.horizon) * rng.uniform(-0.3, 0.3))) < 1 + (yy - lay.horizon) / h * 3) \
        & (np.mod(yy, 12) < 6) & (yy > lay.horizon)
    road[dash] = 200 + rng.normal(0, 10, (int(dash.sum()), 3))
    tex[ROAD] = road
    period = int(rng.integers(4, 9))
    tiles = ((np.mod(xx, period) < 1) | (np.mod(yy, period) < 1))[..., None]
    tex[SIDEWALK] = flat(grey(95, 160), 6) - 18 * tiles
    bcol = [rng.uniform(80, 200), rng.uniform(70, 170), rng.uniform(60, 150)]
    px, py = int(rng.integers(5, 10)), int(rng.integers(6, 12))
    windows = ((np.mod(xx, px) < px * 0.5) & (np.mod(yy, py) < py * 0.5))[..., None]
    tex[BUILDING] = flat(bcol, 6) * (1 - 0.45 * windows)
    vcol = [rng.uniform(35, 100), rng.uniform(80, 150), rng.uniform(20, 70)]
    blotch = smooth_noise(rng, h, w, 3)[..., None] + smooth_noise(rng, h, w, 8)[..., None]
    tex[VEGETATION] = flat(vcol, 10) * (0.6 + 0.4 * blotch)
    tcol = [rng.uniform(90, 160), rng.uniform(110, 170), rng.uniform(50, 110)]
    tex[TERRAIN] = flat(tcol, 7) + 30 * (smooth_noise(rng, h, w, h / 6)[..., None] - 0.5)
    if rng.random() < 0.3:  # overcast
        top, bottom = grey(150, 215, 4), grey(170, 230, 4)
    else:
        top = [rng.uniform(60, 140), rng.uniform(110, 180), rng.uniform(190, 250)]
        bottom = [min(255, c + rng.uniform(20, 60)) for c in top]
    f = np.clip(yy / max(1, lay.horizon), 0, 1)[..., None]
    tex[SKY] = np.asarray(top, np.float32) * (1 - f) + np.asarray(bottom, np.float32) * f \
        + rng.normal(0, 3, (h, w, 3)).astype(np.float32)
    tex[POLE] = flat(grey(80, 170), 5)
    tex[WIRE] = flat(grey(15, 70, 4), 4)

    # Cars and persons: one colour per instance; cars get a dark window band, persons a skin-tone head.
    objects = flat([0, 0, 0], 6)
    for k, cls in enumerate(kinds, start=1):
        m = inst == k
        if not m.any():
            continue
        col = rng.uniform(20, 235, 3).astype(np.float32)
        objects[m] += col
        if cls == CAR:
            ys = np.flatnonzero(m.any(axis=1))
            band = m & (yy < ys[0] + 0.35 * (ys[-1] - ys[0] + 1))
            objects[band] = objects[band] * 0.3 + 15
        else:
            ys = np.flatnonzero(m.any(axis=1))
            head = m & (yy < ys[0] + 0.22 * (ys[-1] - ys[0] + 1))
            objects[head] = [rng.uniform(150, 230), rng.uniform(110, 180), rng.uniform(90, 150)]
    tex[CAR] = tex[PERSON] = objects
    return tex


def render_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (RGB uint8 HxWx3, train ids uint8 HxW with 255 = ignore)."""
    lay = _Layout(rng, height, width)
    label, inst, kinds = _draw_label(rng, lay)
    tex = _textures(rng, lay, inst, kinds)
    image = np.full((height, width, 3), 25.0, dtype=np.float32)  # ignore region: dark
    for cls, t in tex.items():
        m = label == cls
        image[m] = t[m]
    light = 0.8 + 0.4 * smooth_noise(rng, height, width, max(height, width) / 2)
    image *= light[..., None] * rng.uniform(0.8, 1.15)
    image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")
    image = np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7))), dtype=np.float32)
    image += rng.normal(0, rng.uniform(2, 7), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label

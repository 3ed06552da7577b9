"""The mobile-coverage colours stand out on the basemap and from each other, for every reader.

Colour differences are CIE76 ΔE in CIELAB; readers with protanopia, deuteranopia and
tritanopia are simulated with Machado, Oliveira and Fernandes (2009) at full severity. The
backgrounds are the relief tints and the slope ramp (catalog.portal.tiles) and the basemap's
water and rivers (WATER and the rivers' line colour in static/portal/map.js). The 4G and 3G
fills are compared as drawn: at the portal's default opacity over each background.
"""

from __future__ import annotations

import numpy as np
import pytest

from catalog import settings
from catalog.portal import tiles

BASEMAP_WATER = [(0x9C, 0xC3, 0xE4), (0x5B, 0x9B, 0xD5)]
BACKGROUNDS = [colour for _, colour in tiles.TERRAIN_STOPS + tiles.SLOPE_STOPS] + BASEMAP_WATER
FILL_OPACITY = 0.9 * 0.6  # a vector layer's default 90 %, times map.js's fill factor
SMALLEST_DIFFERENCE = 20.0  # ΔE: clearly different at a glance (2.3 is just noticeable)
VISION = {
    "typical": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, dtype=float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def seen(rgb, vision: str) -> np.ndarray:
    """CIELAB of an sRGB colour as a reader with `vision` sees it."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ np.clip(VISION[vision] @ linear(rgb), 0, 1)
    x, y, z = xyz / np.array([0.95047, 1.0, 1.08883])
    f = [np.cbrt(v) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def difference(a, b, vision: str) -> float:
    return float(np.linalg.norm(seen(a, vision) - seen(b, vision)))


def over(colour, background) -> tuple:
    return tuple(FILL_OPACITY * np.array(colour) + (1 - FILL_OPACITY) * np.array(background))


def coverage_colours() -> dict[str, tuple[int, int, int]]:
    colours = settings.portal_config()["vectors"]["mobile-coverage"]["colours"]
    return {name: tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))
            for name, value in colours.items()}


@pytest.mark.parametrize("vision", list(VISION))
def test_4g_and_3g_stand_out_from_the_basemap_and_from_each_other(vision):
    colours = coverage_colours()
    assert set(colours) == {"4G", "3G"}
    outlines = {(name, background): difference(colour, background, vision)
                for name, colour in colours.items() for background in BACKGROUNDS}
    fills = {background: difference(over(colours["4G"], background),
                                    over(colours["3G"], background), vision)
             for background in BACKGROUNDS}
    assert min(outlines.values()) >= SMALLEST_DIFFERENCE, outlines
    assert min(fills.values()) >= SMALLEST_DIFFERENCE, fills

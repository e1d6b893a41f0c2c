"""Photo files as phones write them, for tests and measurements of ``dirac-demo enhance``: a Display
P3 ICC profile, an EXIF block (camera, date, orientation), and a JPEG carrying both.

The profile is built here, tag by tag (ICC.1:2010, version 4.3): the Display P3 primaries adapted
to D50 (Apple's published colorants), a D65 white through its Bradford ``chad`` matrix and the
sRGB tone curve as a ``para`` curve. LittleCMS (``PIL.ImageCms``) reads it and names it
"Display P3"; Pillow cannot build one itself (``ImageCms.createProfile`` makes sRGB, LAB, XYZ).
"""
from __future__ import annotations

import struct

from PIL import Image

from ..images import ORIENTATION

P3_COLORANTS = ((0.515121, 0.241196, -0.001053), (0.291977, 0.692245, 0.041885), (0.157104, 0.066574, 0.784073))
D50 = (0.9642, 1.0, 0.8249)
BRADFORD_D65_TO_D50 = (1.047882, 0.022919, -0.050201, 0.029587, 0.990479, -0.017059, -0.009232, 0.015076, 0.751678)
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)     # g, a, b, c, d of a type-3 para curve
EXIF_IFD, MAKE, MODEL, DATE_ORIGINAL = 0x8769, 0x010F, 0x0110, 0x9003     # EXIF tags (the sub-IFD pointer, ...)


def _s15(*values: float) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _mluc(text: str) -> bytes:
    name = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(name), 28) + name


def display_p3_icc(description: str = "Display P3") -> bytes:
    """A Display P3 matrix/TRC display profile (ICC v4.3), as bytes."""
    curve = b"para" + bytes(4) + struct.pack(">HH", 3, 0) + _s15(*SRGB_CURVE)
    tags = [(b"desc", _mluc(description)), (b"cprt", _mluc("No copyright, use freely")),
            (b"wtpt", b"XYZ " + bytes(4) + _s15(*D50)), (b"chad", b"sf32" + bytes(4) + _s15(*BRADFORD_D65_TO_D50)),
            *((sig, b"XYZ " + bytes(4) + _s15(*xyz)) for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), P3_COLORANTS)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = [], b""
    for sig, data in tags:
        table.append(struct.pack(">4sII", sig, offset + len(body), len(data)))
        body += data + bytes(-len(data) % 4)
    size = offset + len(body)
    header = (struct.pack(">I4sI4s4s4s", size, b"lcms", 0x04300000, b"mntr", b"RGB ", b"XYZ ")
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4)
              + bytes(8) + struct.pack(">I", 0) + _s15(*D50) + b"lcms" + bytes(16) + bytes(28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


def camera_exif(make: str = "Apple", model: str = "iPhone 15 Pro", date: str = "2024:06:01 12:34:56",
                orientation: int = 1) -> bytes:
    """An EXIF block (with its ``Exif\\0\\0`` prefix) naming a camera, the date taken and an orientation."""
    exif = Image.Exif()
    exif[MAKE], exif[MODEL], exif[ORIENTATION] = make, model, orientation
    exif.get_ifd(EXIF_IFD)[DATE_ORIGINAL] = date
    return exif.tobytes()


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """A JPEG file with an APP1 EXIF segment put right after its start-of-image marker (the
    entropy-coded data untouched)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]

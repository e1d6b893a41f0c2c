"""The AV1 quantiser of AVIF files: base_q_idx through the ISO-BMFF and AV1 headers, the quality
table of our encoder, other encoder settings and layouts, and bad input."""
import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dirac_demo.codecs import av1, avif
from dirac_demo.errors import BitstreamError, InputError

EXAMPLE = "assets/examples/kodim23.png"


@pytest.fixture(scope="module")
def natural() -> Image.Image:
    return Image.open(EXAMPLE).convert("RGB").resize((256, 192), Image.LANCZOS)


def pillow_avif(img: Image.Image, quality: int, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="AVIF", quality=quality, **options)
    return buf.getvalue()


# Our encoder: the table and the round trip

def test_table_covers_every_quality_once_and_is_monotone():
    table = avif.quality_table()
    qualities = [q for group in table.values() for q in group]
    assert sorted(qualities) == list(avif.QUALITIES)
    assert len(table) == 64                                 # libaom's quantiser levels
    assert table[0] == (100,) and 2 in table[255]
    by_quality = {q: k for k, group in table.items() for q in group}
    q_idx = [by_quality[q] for q in avif.QUALITIES]
    assert all(a >= b for a, b in zip(q_idx, q_idx[1:]))    # finer as quality rises
    for group in table.values():                            # each group is a run of qualities
        assert list(group) == list(range(group[0], group[-1] + 1))


def test_round_trip_names_the_same_quantizer(natural):
    files = {q: avif.encode(natural, q) for q in avif.QUALITIES}
    for q, data in files.items():
        q_idx = av1.base_q_idx(data)
        estimate, exact = avif.estimate_quality(data)
        group = avif.quality_table()[q_idx]
        assert exact and q in group                         # the table holds for this image too
        assert av1.base_q_idx(files[estimate]) == q_idx
        assert abs(estimate - q) <= group[-1] - group[0]


def test_quality_of_middle_nearest_and_range():
    table = avif.quality_table()
    for q_idx, group in table.items():
        assert avif.quality_of(q_idx) == (group[(len(group) - 1) // 2], True)
    assert avif.quality_of(1) == (100, False)                # nearest level is 0
    assert avif.quality_of(2) == (100, False)                # a tie between 0 and 4: the finer
    assert avif.quality_of(3) == (table[4][0], False)
    for bad in (-1, 256):
        with pytest.raises(InputError):
            avif.quality_of(bad)


def test_table_is_built_once(natural):
    avif.quality_table()
    before = avif.quality_table.cache_info()
    avif.estimate_quality(avif.encode(natural, 40))
    avif.quality_of(100)
    after = avif.quality_table.cache_info()
    assert after.currsize == 1 and after.misses == before.misses
    assert after.hits == before.hits + 2


# Other encoder settings

SETTINGS = {
    "speed 6": (None, {"speed": 6}),
    "4:4:4": (None, {"speed": 8, "subsampling": "4:4:4"}),
    "grayscale": ("L", {"speed": 8}),
    "33x17": ((33, 17), {"speed": 8}),
    "1100x700": ((1100, 700), {"speed": 8}),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_other_settings_parse(natural, name):
    change, options = SETTINGS[name]
    img = natural.convert(change) if change == "L" else natural.resize(change) if change else natural
    qualities = (0, 30, 60, 90, 100) if name == "1100x700" else range(0, 101, 10)
    headers = [av1.primary_frame_header(pillow_avif(img, q, **options)) for q in qualities]
    q_idx = [h.base_q_idx for h in headers]
    assert all(0 <= k <= 255 for k in q_idx) and all(a >= b for a, b in zip(q_idx, q_idx[1:]))
    assert all((h.width, h.height, h.frame_type) == (*img.size, av1.KEY_FRAME) for h in headers)
    assert q_idx[-1] == 0
    ours = [av1.base_q_idx(avif.encode(natural, q)) for q in qualities]
    assert q_idx == ours                                    # the quality alone sets the quantiser
    if name == "1100x700":                                  # libavif's automatic tiling
        assert headers[0].tile_cols * headers[0].tile_rows > 1


def test_uniform_tiles_as_asked(natural):
    img = natural.resize((1100, 700))                        # 18 x 11 superblocks of 64
    header = av1.primary_frame_header(pillow_avif(img, 50, speed=8, tile_cols=1, tile_rows=3))
    assert (header.tile_cols, header.tile_rows) == (2, 6)   # 2 columns of 9; 8 rows asked, of 2: 6
    assert header.base_q_idx == av1.base_q_idx(avif.encode(natural, 50))


TILE_SIZES = {   # libaom options, the tiles they give (widths and heights repeat to fill)
    "64 px superblocks": ({"tile-width": "5,2", "tile-height": "3"}, (3, 3)),   # 5, 2, 5 of 12; 3, 3, 2 of 8
    "128 px superblocks": ({"sb-size": "128", "tile-width": "2,1", "tile-height": "3"}, (4, 2)),   # of 6; of 4
}


@pytest.mark.parametrize("name", TILE_SIZES)
def test_explicit_tile_sizes(natural, name):
    options, tiles = TILE_SIZES[name]
    try:
        data = pillow_avif(natural.resize((768, 512)), 50, speed=8, advanced=options)
    except ValueError:
        pytest.skip("this libavif / libaom takes no such codec option")
    header = av1.primary_frame_header(data)
    assert (header.tile_cols, header.tile_rows) == tiles
    assert header.base_q_idx == av1.base_q_idx(avif.encode(natural, 50))


def test_screen_content_tools():
    """A flat-coloured image with text: libaom turns on screen content tools (the frame header
    then holds force_integer_mv and allow_intrabc)."""
    rng = np.random.default_rng(0)
    palette = np.array([[255, 255, 255], [0, 0, 0], [200, 30, 30], [30, 30, 200]], np.uint8)
    img = Image.fromarray(palette[rng.integers(0, 4, (24, 32))].repeat(8, 0).repeat(8, 1))
    draw = ImageDraw.Draw(img)
    for y in range(0, 192, 12):
        draw.text((2, y), "screen content tools 0123456789", fill=(0, 0, 0))
    for q in (20, 50, 90):
        header = av1.primary_frame_header(avif.encode(img, q))
        assert header.screen_content_tools
        assert header.base_q_idx == av1.base_q_idx(avif.encode(avif._table_image(), q))


def test_image_sequence_first_frame(natural):
    """An ``avis`` file's first frame follows a full sequence header (not the reduced still
    picture one) with order hints."""
    second = natural.transpose(Image.FLIP_LEFT_RIGHT)
    files = {q: pillow_avif(natural, q, speed=8, save_all=True, append_images=[second]) for q in (0, 50, 100)}
    headers = {q: av1.primary_frame_header(data) for q, data in files.items()}
    assert all((h.width, h.height) == natural.size for h in headers.values())
    assert headers[0].base_q_idx >= headers[50].base_q_idx >= headers[100].base_q_idx == 0
    seq = next(whole[head:] for kind, head, whole in obus(item_of(files[50])) if kind == av1.OBU_SEQUENCE_HEADER)
    assert not av1.sequence_header(seq).reduced_still_picture_header
    assert avif.estimate_quality(files[50])[0] >= 50         # the key frame is coded finer


# Layouts Pillow does not write: an AVIF container built here around an encoded image's OBUs

def box(kind: bytes, payload: bytes = b"", large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)


def item_of(data: bytes) -> bytes:
    """The payload of a single-image file's mdat box (libavif's whole item)."""
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"mdat":
            return data[pos + 8:pos + size]
        pos += size
    raise AssertionError("no mdat")


def obus(stream: bytes) -> list[tuple[int, int, bytes]]:
    """(type, header length, whole OBU) of each OBU of a stream with size fields and no extensions."""
    out, pos = [], 0
    while pos < len(stream):
        end, size, shift = pos + 1, 0, 0
        while True:
            byte = stream[end]
            size, shift, end = size | (byte & 0x7F) << shift, shift + 7, end + 1
            if not byte & 0x80:
                break
        out.append(((stream[pos] >> 3) & 0xF, end - pos, stream[pos:end + size]))
        pos = end + size
    return out


def container(item: bytes, config: bytes = b"", iloc_version: int = 0, method: int = 0, pieces: int = 1,
              grid: bool = False, large: bool = False, item_type: bytes = b"av01") -> bytes:
    """An AVIF file holding ``item`` (AV1 OBUs) as item 1, with ``config`` as its av1C configOBUs,
    an unassociated av1C of garbage before it, and optionally a primary grid item 2 over it."""
    ftyp = box(b"ftyp", b"avif" + bytes(4) + b"mif1avif")
    grid_data = bytes([0, 0, 0, 0]) + struct.pack(">HH", 64, 64)
    junk = b"\xee" * 8                                      # before the item, so no offset is 0
    in_idat = junk + item if method == 1 else b""

    def meta(base: int) -> bytes:
        wide = iloc_version == 2
        offset_size, index_size = (8 if wide else 4), (4 if iloc_version == 1 else 0)
        cuts = [len(junk) + len(item) * i // pieces for i in range(pieces + 1)]
        extents = b"".join((b"\x01" * index_size + (cuts[i]).to_bytes(offset_size, "big")
                            + struct.pack(">I", cuts[i + 1] - cuts[i])) for i in range(pieces))
        ident = (lambda n: struct.pack(">I", n)) if wide else (lambda n: struct.pack(">H", n))
        entry = ident(1) + (struct.pack(">H", method) if iloc_version else b"") + struct.pack(">HIH", 0, base, pieces)
        entries = [entry + extents]
        if grid:
            entries.append(ident(2) + struct.pack(">HHIHII", 1, 0, 0, 1, len(in_idat), len(grid_data)))
        iloc = full_box(b"iloc", iloc_version, bytes([offset_size << 4 | 4, 4 << 4 | index_size])
                        + ident(len(entries)) + b"".join(entries))
        infe = [full_box(b"infe", 2, struct.pack(">HH", 1, 0) + item_type + b"\0")]
        if grid:
            infe.append(full_box(b"infe", 2, struct.pack(">HH", 2, 0) + b"grid\0"))
        iinf = full_box(b"iinf", 0, struct.pack(">H", len(infe)) + b"".join(infe))
        av1c = [box(b"av1C", bytes([0x81, 0, 0x0C, 0]) + c) for c in (b"\xff\xff", config)]
        ispe = full_box(b"ispe", 0, struct.pack(">II", 64, 64))
        ipco = box(b"ipco", av1c[0] + ispe + av1c[1])
        assoc = (struct.pack(">IB", 1, 2) + struct.pack(">HH", 0x8002, 0x8003) if wide
                 else struct.pack(">HB", 1, 2) + bytes([0x82, 0x83]))
        ipma = full_box(b"ipma", 1 if wide else 0, struct.pack(">I", 1) + assoc, flags=1 if wide else 0)
        parts = [full_box(b"hdlr", 0, bytes(4) + b"pict" + bytes(13)),
                 full_box(b"pitm", 0, struct.pack(">H", 2 if grid else 1)), iloc, iinf,
                 box(b"iprp", ipco + ipma)]
        if grid:
            parts.append(full_box(b"iref", 0, box(b"dimg", struct.pack(">HHH", 2, 1, 1))))
        if method == 1 or grid:
            parts.append(box(b"idat", in_idat + grid_data))
        return full_box(b"meta", 0, b"".join(parts))

    mdat_head = 16 if large else 8
    base = len(ftyp) + len(meta(0)) + mdat_head if method == 0 else 0
    return ftyp + meta(base) + (box(b"mdat", junk + item, large) if method == 0 else b"")


@pytest.fixture(scope="module")
def small() -> bytes:
    return avif.encode(avif._table_image(), 50)


LAYOUTS = {
    "as libavif": {},
    "iloc v1, 3 extents, index_size 4": {"iloc_version": 1, "pieces": 3},
    "iloc v1, in idat": {"iloc_version": 1, "method": 1, "pieces": 2},
    "iloc v2, 8-byte offsets, ipma v1 with 15-bit indices, 64-bit box size": {"iloc_version": 2, "large": True},
    "grid over one tile": {"iloc_version": 1, "grid": True},
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_layouts(small, name):
    built = container(item_of(small), **LAYOUTS[name])
    assert av1.base_q_idx(built) == av1.base_q_idx(small) == 148


def test_sequence_header_in_av1c(small):
    """Without a sequence header in the item, the av1C that ipma associates with it supplies one
    (the file's first av1C, not associated, holds garbage)."""
    parts = obus(item_of(small))
    header = [whole for kind, _, whole in parts if kind == av1.OBU_SEQUENCE_HEADER]
    rest = [whole for kind, _, whole in parts if kind != av1.OBU_SEQUENCE_HEADER]
    assert len(header) == 1
    assert av1.base_q_idx(container(b"".join(rest), config=header[0])) == 148
    with pytest.raises(BitstreamError, match="no sequence header"):
        av1.base_q_idx(container(b"".join(rest)))


def test_only_intra_frames(natural):
    """An image sequence's first frame, rewritten as a repeated frame and as an inter frame."""
    data = pillow_avif(natural, 50, speed=8, save_all=True, append_images=[natural])
    parts = [whole for _, _, whole in obus(item_of(data))]
    frame, start = next((i, head) for i, (kind, head, _) in enumerate(obus(item_of(data)))
                        if kind == av1.OBU_FRAME)
    assert av1.base_q_idx(container(b"".join(parts))) == av1.base_q_idx(data)
    for bits, message in ((0x80, "repeats an earlier frame"), (0x20, "inter frame")):
        changed = bytearray(parts[frame])
        changed[start] = changed[start] & 0x1F | bits               # show_existing_frame, frame_type
        with pytest.raises(BitstreamError, match=message):
            av1.base_q_idx(container(b"".join(parts[:frame] + [bytes(changed)] + parts[frame + 1:])))


def test_other_item_types_are_refused(small):
    with pytest.raises(BitstreamError, match="not AV1"):
        av1.base_q_idx(container(item_of(small), item_type=b"hvc1"))


# Bad input

def test_truncated_files(small):
    for cut in range(len(small)):
        with pytest.raises(BitstreamError):
            av1.base_q_idx(small[:cut])


def test_foreign_and_random_bytes(natural):
    png = io.BytesIO()
    natural.save(png, format="PNG")
    rng = np.random.default_rng(1)
    ftyp = box(b"ftyp", b"avif" + bytes(4) + b"mif1avif")
    samples = [b"", png.getvalue(), b"\0" * 64, ftyp, ftyp + b"\xff" * 40]
    samples += [rng.bytes(int(n)) for n in rng.integers(1, 400, 40)]
    samples += [ftyp + rng.bytes(int(n)) for n in rng.integers(1, 400, 40)]
    for data in samples:
        with pytest.raises(BitstreamError):
            av1.base_q_idx(data)
        with pytest.raises(BitstreamError):
            avif.estimate_quality(data)


def test_flipped_bits_give_a_q_idx_or_bitstream_error(small):
    for pos in range(len(small)):
        for bit in range(8):
            data = bytearray(small)
            data[pos] ^= 1 << bit
            try:
                assert 0 <= av1.base_q_idx(bytes(data)) <= 255
            except BitstreamError:
                pass


# Header fields libavif does not write, in headers written here after the AV1 specification

class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> "BitWriter":
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def uvlc(self, value: int) -> "BitWriter":
        n = (value + 1).bit_length()
        return self.put(0, n - 1).put(value + 1, n)

    def ns(self, value: int, n: int) -> "BitWriter":
        w = n.bit_length()
        m = (1 << w) - n
        if value < m:
            return self.put(value, w - 1)
        return self.put((value + m) >> 1, w - 1).put((value + m) & 1, 1)

    def align(self) -> "BitWriter":
        return self.put(0, -len(self.bits) % 8)

    def data(self) -> bytes:
        bits = self.align().bits
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def full_sequence_header() -> bytes:
    """Timing and decoder model info, two operating points, frame IDs, 128 px superblocks, order
    hints of 7 bits, screen content tools forced on, integer motion vectors off, superres."""
    w = BitWriter().put(0, 3).put(0, 1).put(0, 1)          # profile, still_picture, reduced header
    w.put(1, 1).put(1001, 32).put(60000, 32).put(0, 1)     # timing info, unequal intervals
    w.put(1, 1).put(9, 5).put(1, 32).put(6, 5).put(4, 5)  # decoder model: delays 10, removal 7, pres. 5
    w.put(1, 1).put(1, 5)                                   # initial display delay present, 2 points
    w.put(0x103, 12).put(9, 5).put(1, 1)                    # point 0: layers T0 T1 S0, level 9, tier
    w.put(1, 1).put(100, 10).put(200, 10).put(0, 1).put(1, 1).put(3, 4)
    w.put(0x101, 12).put(4, 5).put(1, 1).put(5, 10).put(6, 10).put(1, 1).put(0, 1)   # point 1: T0 S0
    w.put(10, 4).put(9, 4).put(1099, 11).put(699, 10)       # frame size bits and largest size
    w.put(1, 1).put(3, 4).put(2, 3)                         # frame IDs of 3 + 2 + 3 = 8 bits
    w.put(1, 1).put(0b11, 2).put(0b0000, 4).put(1, 1).put(0b11, 2)   # 128 px, tools, order hint
    w.put(0, 1).put(1, 1).put(0, 1).put(0, 1).put(6, 3)     # screen content 1, integer mv 0, 7 bits
    w.put(1, 1).put(0, 1).put(0, 1)                         # superres, cdef, restoration
    return w.put(0, 1).put(0, 1).put(0, 1).put(1, 1).put(0, 2).put(0, 1).put(0, 1).data()  # colour, grain


def frame_header_bits(frame_type: int, shown: bool) -> bytes:
    """A frame of temporal layer 1: 1000 x 600 coded at 500 x 600 (superres 8/16), render size,
    explicit 2 x 2 tiles of 128 px superblocks (4 x 5), base_q_idx 201."""
    w = BitWriter().put(0, 1).put(frame_type, 2).put(shown, 1)
    if shown:
        w.put(17, 5)                                        # frame_presentation_time
    else:
        w.put(1, 1)                                         # showable_frame
    if not (frame_type == av1.KEY_FRAME and shown):
        w.put(1, 1)                                         # error_resilient_mode
    w.put(1, 1)                                             # disable_cdf_update
    w.put(0x5A, 8).put(1, 1).put(33, 7)                     # current_frame_id, size override, order hint
    w.put(1, 1).put(99, 7)                                  # buffer removal time of point 0 only
    if not (frame_type == av1.KEY_FRAME and shown):
        w.put(0x0F, 8)                                      # refresh_frame_flags
        for hint in range(8):
            w.put(hint, 7)                                  # ref_order_hint
    w.put(999, 11).put(599, 10).put(1, 1).put(7, 3)         # frame size, superres denominator 16
    w.put(1, 1).put(999, 16).put(599, 16)                   # render size
    w.put(0, 1).ns(0, 4).ns(2, 3).ns(1, 5).ns(2, 3)         # explicit tiles: widths 1, 3; heights 2, 3
    w.put(3, 2).put(3, 2)                                   # context_update_tile_id, tile_size_bytes
    return w.put(201, 8).put(0, 1).put(0, 1).data()


@pytest.mark.parametrize("frame_type, shown", [(av1.KEY_FRAME, True), (av1.KEY_FRAME, False),
                                               (av1.INTRA_ONLY_FRAME, True)])
def test_full_headers(frame_type, shown):
    seq = full_sequence_header()
    payload = frame_header_bits(frame_type, shown)
    header = av1.frame_header(payload, av1.sequence_header(seq), temporal_id=1)
    assert header == av1.FrameHeader(frame_type, True, 500, 600, 1000, 2, 2, 201)
    stream = bytes([av1.OBU_SEQUENCE_HEADER << 3 | 2, len(seq)]) + seq
    stream += bytes([av1.OBU_FRAME_HEADER << 3 | 6, 1 << 5, len(payload)]) + payload   # temporal_id 1
    assert av1.base_q_idx(container(stream)) == 201
    for cut in range(len(payload)):
        with pytest.raises(BitstreamError, match="ends early"):
            av1.frame_header(payload[:cut], av1.sequence_header(seq), temporal_id=1)


def test_descriptors():
    w = BitWriter().uvlc(0).uvlc(5).uvlc(1000).ns(0, 5).ns(2, 5).ns(3, 5).ns(4, 5).align().put(0b1000_0001, 8).put(5, 8)
    r = av1.BitReader(w.data(), "test")
    assert [r.uvlc(), r.uvlc(), r.uvlc()] == [0, 5, 1000]
    assert [r.ns(5) for _ in range(4)] == [0, 2, 3, 4]
    r.pos = (r.pos + 7) // 8 * 8
    assert r.leb128() == 1 + (5 << 7)
    with pytest.raises(BitstreamError, match="over-long"):
        av1.BitReader(b"\x80" * 8 + b"\x01", "test").leb128()

"""The quantiser of a plain AVIF file: the AV1 ``base_q_idx`` of its primary image, read from the
ISO-BMFF boxes and the AV1 headers (a pure reader; :mod:`.avif` maps it to its encoder's quality).

Only the headers are read (``meta`` → ``pitm``, ``iinf``, ``iloc``, ``idat``, ``iprp``; the AV1
sequence header and the first frame header up to ``quantization_params``); no pixel is decoded.

For still images libavif and libaom choose ``base_q_idx`` from the quality alone: the same
quality gives the same ``base_q_idx`` whatever the image, its size, chroma subsampling, range or
the encoder speed, so a quality read back from a still AVIF file names the same quantiser. The
key frame of an image sequence (an ``avis`` file) is coded finer than its quality's quantiser by
libaom's rate control at all but the highest qualities, so its estimate comes out higher than
the quality it was written at.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import BitstreamError

OBU_SEQUENCE_HEADER, OBU_FRAME_HEADER, OBU_FRAME = 1, 3, 6
KEY_FRAME, INTRA_ONLY_FRAME = 0, 2
SELECT = 2                    # seq_force_screen_content_tools / seq_force_integer_mv: chosen per frame
ALL_FRAMES = 0xFF             # refresh_frame_flags of a shown key frame
FTYP_BRANDS = (b"avif", b"avis")   # an AVIF file's ISO-BMFF major brands
MAX_TILE_WIDTH, MAX_TILE_AREA, MAX_TILE_COLS, MAX_TILE_ROWS = 4096, 4096 * 2304, 64, 64

Box = tuple[bytes, int, int]  # an ISO-BMFF box: type, payload start, payload end (file offsets)


class BitReader:
    """Reads the AV1 specification's descriptors, most significant bit first: f(n), uvlc(), ns(n)
    and leb128(); a read past the end raises BitstreamError naming ``what`` is being read."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what, self.pos = data, what, 0

    def f(self, n: int) -> int:
        """An unsigned ``n``-bit number."""
        end = self.pos + n
        if end > 8 * len(self.data):
            raise BitstreamError(f"The {self.what} ends early.")
        first, last = self.pos >> 3, (end + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos = end
        return (chunk >> (8 * last - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        """One bit."""
        return self.f(1) == 1

    def uvlc(self) -> int:
        """A variable-length unsigned number (leading zeros, then as many value bits)."""
        zeros = 0
        while not self.flag():
            zeros += 1
        return (1 << 32) - 1 if zeros >= 32 else self.f(zeros) + (1 << zeros) - 1

    def ns(self, n: int) -> int:
        """A number in 0..n-1, coded with ⌊log2 n⌋ or one more bits."""
        w = n.bit_length()
        m = (1 << w) - n
        v = self.f(w - 1)
        return v if v < m else (v << 1) - m + self.f(1)

    def leb128(self) -> int:
        """A little-endian base-128 number of up to 8 bytes, from a byte boundary."""
        value = 0
        for i in range(8):
            byte = self.f(8)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value
        raise BitstreamError(f"The {self.what} holds an over-long leb128 number.")

    def fourcc(self) -> bytes:
        """Four bytes, as a box or item type."""
        return self.f(32).to_bytes(4, "big")


# ISO-BMFF: the primary item's AV1 data and its av1C configuration OBUs

def _boxes(data: bytes, start: int, end: int) -> list[Box]:
    """The boxes laid end to end in ``data[start:end]``."""
    boxes = []
    while start < end:
        r = BitReader(data[start:min(start + 16, end)], "ISO-BMFF box header")
        size, kind, head = r.f(32), r.fourcc(), 8
        if size == 1:
            size, head = r.f(64), 16
        elif size == 0:
            size = end - start
        if size < head or start + size > end:
            raise BitstreamError(f"The ISO-BMFF box '{kind.decode('latin-1')}' overruns the data around it.")
        boxes.append((kind, start + head, start + size))
        start += size
    return boxes


def _full_box(data: bytes, box: Box) -> tuple[BitReader, int, int]:
    """A reader over a full box's payload after its version and flags, which it returns too."""
    kind, start, end = box
    r = BitReader(data[start:end], f"'{kind.decode('latin-1')}' box")
    version, flags = r.f(8), r.f(24)
    return r, version, flags


def _child(boxes: list[Box], kind: bytes, required: bool = True) -> Box | None:
    """The first box of type ``kind`` among ``boxes`` (None when absent and not ``required``)."""
    for box in boxes:
        if box[0] == kind:
            return box
    if required:
        raise BitstreamError(f"The AVIF file has no '{kind.decode()}' box.")
    return None


def _meta_boxes(data: bytes) -> list[Box]:
    """The boxes inside the file's ``meta`` box, after checking its ``ftyp`` names AVIF."""
    if data[4:8] != b"ftyp":
        raise BitstreamError("The data is not an AVIF file: it does not start with an ftyp box.")
    top = _boxes(data, 0, len(data))
    _, start, end = top[0]
    brands = [data[i:i + 4] for i in range(start, end - 3, 4) if i != start + 4]   # skip minor_version
    if not any(b in FTYP_BRANDS for b in brands):
        raise BitstreamError("The ISO-BMFF file names no AVIF brand in its ftyp box.")
    meta = _child(top, b"meta")
    return _boxes(data, meta[1] + 4, meta[2])


def _primary_id(data: bytes, meta: list[Box]) -> int:
    """The primary item's ID (``pitm``)."""
    r, version, _ = _full_box(data, _child(meta, b"pitm"))
    return r.f(16 if version == 0 else 32)


def _item_types(data: bytes, meta: list[Box]) -> dict[int, bytes]:
    """Each item's type by ID (``iinf`` → ``infe`` of versions 2 and 3)."""
    iinf = _child(meta, b"iinf")
    _, version, _ = _full_box(data, iinf)
    start = iinf[1] + 4 + (2 if version == 0 else 4)                   # after entry_count
    types = {}
    for box in _boxes(data, start, iinf[2]):
        if box[0] != b"infe":
            continue
        e, v, _ = _full_box(data, box)
        if v >= 2:
            item_id = e.f(16 if v == 2 else 32)
            e.f(16)                                                    # item_protection_index
            types[item_id] = e.fourcc()
    return types


def _dimg_first(data: bytes, meta: list[Box], item_id: int) -> int:
    """The first item a derived image (a ``grid``) is built from (``iref`` → ``dimg``)."""
    iref = _child(meta, b"iref", required=False)
    if iref is not None:
        _, version, _ = _full_box(data, iref)
        for kind, start, end in _boxes(data, iref[1] + 4, iref[2]):
            r = BitReader(data[start:end], "'iref' box")
            if kind == b"dimg" and r.f(16 if version == 0 else 32) == item_id and r.f(16) > 0:
                return r.f(16 if version == 0 else 32)
    raise BitstreamError("The AVIF file's grid image names no AV1 tile.")


def _av1_item(data: bytes, meta: list[Box]) -> int:
    """The ID of the AV1 image to read: the primary item, or a primary grid's first tile."""
    item_id, types = _primary_id(data, meta), _item_types(data, meta)
    if types.get(item_id) == b"grid":
        item_id = _dimg_first(data, meta, item_id)
    kind = types.get(item_id, b"none")
    if kind != b"av01":
        raise BitstreamError(f"The AVIF file's image is of type '{kind.decode('latin-1')}', not AV1 ('av01').")
    return item_id


def _iloc_entry(data: bytes, meta: list[Box], item_id: int) -> tuple[int, int, list[tuple[int, int]]]:
    """An item's location (``iloc`` of versions 0, 1 and 2): construction method, base offset and
    (offset, length) extents."""
    r, version, _ = _full_box(data, _child(meta, b"iloc"))
    if version > 2:
        raise BitstreamError(f"The AVIF file's iloc box has version {version}; versions 0 to 2 are read.")
    offset_size, length_size, base_offset_size, index_size = r.f(4), r.f(4), r.f(4), r.f(4)
    if version == 0:
        index_size = 0                                                 # a reserved field
    id_bits = 16 if version < 2 else 32
    for _ in range(r.f(id_bits)):
        entry_id = r.f(id_bits)
        method = r.f(16) & 0xF if version in (1, 2) else 0
        r.f(16)                                                        # data_reference_index
        base = r.f(8 * base_offset_size)
        extents = []
        for _ in range(r.f(16)):
            r.f(8 * index_size)
            extents.append((r.f(8 * offset_size), r.f(8 * length_size)))
        if entry_id == item_id:
            return method, base, extents
    raise BitstreamError("The AVIF file does not locate its AV1 image (no 'iloc' entry).")


def _item_data(data: bytes, meta: list[Box], item_id: int) -> bytes:
    """An item's bytes: its extents in the file (construction method 0) or in ``idat`` (1)."""
    method, base, extents = _iloc_entry(data, meta, item_id)
    if method == 0:
        source = data
    elif method == 1:
        _, start, end = _child(meta, b"idat")
        source = data[start:end]
    else:
        raise BitstreamError(f"The AVIF file's image is stored with iloc construction method {method}, "
                             "which is not read here.")
    chunks = []
    for offset, length in extents:
        start = base + offset
        stop = len(source) if length == 0 else start + length
        if stop > len(source):
            raise BitstreamError("The AVIF file's image data lies past the end of the file.")
        chunks.append(source[start:stop])
    return b"".join(chunks)


def _config_obus(data: bytes, meta: list[Box], item_id: int) -> bytes:
    """The configOBUs of the ``av1C`` property associated with the item (``iprp`` → ``ipma``),
    empty when it has none."""
    iprp = _child(meta, b"iprp", required=False)
    if iprp is None:
        return b""
    boxes = _boxes(data, iprp[1], iprp[2])
    ipco = _child(boxes, b"ipco")
    properties = _boxes(data, ipco[1], ipco[2])
    for index in _property_indices(data, boxes, item_id):
        if 0 < index <= len(properties) and properties[index - 1][0] == b"av1C":
            _, start, end = properties[index - 1]
            if end - start < 4:
                raise BitstreamError("The AVIF file's av1C box is cut short.")
            return data[start + 4:end]
    return b""


def _property_indices(data: bytes, iprp: list[Box], item_id: int) -> list[int]:
    """The 1-based ``ipco`` indices of the properties that the ``ipma`` boxes associate with an item."""
    indices = []
    for box in iprp:
        if box[0] != b"ipma":
            continue
        r, version, flags = _full_box(data, box)
        for _ in range(r.f(32)):
            entry_id = r.f(16 if version < 1 else 32)
            found = [r.f(16 if flags & 1 else 8) & (0x7FFF if flags & 1 else 0x7F) for _ in range(r.f(8))]
            if entry_id == item_id:
                indices += found
    return indices


# AV1: OBUs, the sequence header and the frame header up to base_q_idx

def _obus(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """The OBUs of a low-overhead AV1 stream: (type, temporal_id, spatial_id, payload)."""
    r = BitReader(data, "AV1 OBU header")
    while r.pos < 8 * len(data):
        if r.flag():
            raise BitstreamError("An AV1 OBU header has its forbidden bit set.")
        kind, extension, has_size = r.f(4), r.flag(), r.flag()
        r.f(1)                                                         # obu_reserved_1bit
        temporal_id = spatial_id = 0
        if extension:
            temporal_id, spatial_id = r.f(3), r.f(2)
            r.f(3)                                                     # extension_header_reserved_3bits
        size = r.leb128() if has_size else len(data) - r.pos // 8
        start = r.pos // 8
        if start + size > len(data):
            raise BitstreamError("An AV1 OBU runs past the end of its data.")
        yield kind, temporal_id, spatial_id, data[start:start + size]
        r.pos = 8 * (start + size)


@dataclass
class SequenceHeader:
    """The sequence header fields that the frame header's syntax depends on."""

    reduced_still_picture_header: bool = False
    decoder_model_info_present: bool = False
    equal_picture_interval: bool = False
    buffer_delay_length: int = 0
    buffer_removal_time_length: int = 0
    frame_presentation_time_length: int = 0
    operating_points: tuple[tuple[int, bool], ...] = ((0, False),)   # (operating_point_idc, decoder model present)
    frame_width_bits: int = 0
    frame_height_bits: int = 0
    max_width: int = 0
    max_height: int = 0
    frame_id_length: int = 0                                          # 0: no frame IDs
    use_128x128_superblock: bool = False
    enable_order_hint: bool = False
    order_hint_bits: int = 0
    force_screen_content_tools: int = SELECT
    force_integer_mv: int = SELECT
    enable_superres: bool = False


def sequence_header(payload: bytes) -> SequenceHeader:
    """A sequence header OBU's payload, read up to ``enable_superres`` (colour config and film
    grain, which follow, do not change the frame header's syntax before ``base_q_idx``)."""
    r = BitReader(payload, "AV1 sequence header")
    seq = SequenceHeader()
    if r.f(3) > 2:
        raise BitstreamError("The AV1 sequence header names a reserved profile.")
    r.f(1)                                                             # still_picture
    seq.reduced_still_picture_header = r.flag()
    if seq.reduced_still_picture_header:
        r.f(5)                                                         # seq_level_idx[0]
    else:
        _timing_and_decoder_model(r, seq)
        _operating_points(r, seq)
    _frame_size_limits(r, seq)
    _tools(r, seq)
    return seq


def _timing_and_decoder_model(r: BitReader, seq: SequenceHeader) -> None:
    """timing_info() and decoder_model_info(), when present."""
    if not r.flag():                                                   # timing_info_present_flag
        return
    r.f(64)                                                            # num_units_in_display_tick, time_scale
    seq.equal_picture_interval = r.flag()
    if seq.equal_picture_interval:
        r.uvlc()                                                       # num_ticks_per_picture_minus_1
    seq.decoder_model_info_present = r.flag()
    if seq.decoder_model_info_present:
        seq.buffer_delay_length = r.f(5) + 1
        r.f(32)                                                        # num_units_in_decoding_tick
        seq.buffer_removal_time_length = r.f(5) + 1
        seq.frame_presentation_time_length = r.f(5) + 1


def _operating_points(r: BitReader, seq: SequenceHeader) -> None:
    """The operating points, with their decoder model and display delay parameters."""
    initial_display_delay_present = r.flag()
    points = []
    for _ in range(r.f(5) + 1):
        idc = r.f(12)
        if r.f(5) > 7:                                                 # seq_level_idx
            r.f(1)                                                     # seq_tier
        model = seq.decoder_model_info_present and r.flag()
        if model:
            r.f(2 * seq.buffer_delay_length + 1)                       # decoder/encoder delay, low delay
        if initial_display_delay_present and r.flag():
            r.f(4)                                                     # initial_display_delay_minus_1
        points.append((idc, model))
    seq.operating_points = tuple(points)


def _frame_size_limits(r: BitReader, seq: SequenceHeader) -> None:
    """The frame size field widths, the largest frame size and the frame ID lengths."""
    seq.frame_width_bits, seq.frame_height_bits = r.f(4) + 1, r.f(4) + 1
    seq.max_width, seq.max_height = r.f(seq.frame_width_bits) + 1, r.f(seq.frame_height_bits) + 1
    if not seq.reduced_still_picture_header and r.flag():              # frame_id_numbers_present_flag
        seq.frame_id_length = r.f(4) + 2 + r.f(3) + 1


def _tools(r: BitReader, seq: SequenceHeader) -> None:
    """The coding tool flags up to ``enable_superres``."""
    seq.use_128x128_superblock = r.flag()
    r.f(2)                                                             # enable_filter_intra, _intra_edge_filter
    if not seq.reduced_still_picture_header:
        r.f(4)                                                         # interintra, masked, warped, dual filter
        seq.enable_order_hint = r.flag()
        if seq.enable_order_hint:
            r.f(2)                                                     # enable_jnt_comp, enable_ref_frame_mvs
        seq.force_screen_content_tools = SELECT if r.flag() else r.f(1)
        if seq.force_screen_content_tools > 0:
            seq.force_integer_mv = SELECT if r.flag() else r.f(1)
        if seq.enable_order_hint:
            seq.order_hint_bits = r.f(3) + 1
    seq.enable_superres = r.flag()


@dataclass
class FrameHeader:
    """An intra frame header's facts up to ``base_q_idx``."""

    frame_type: int
    screen_content_tools: bool
    width: int                 # coded width, after superres scaling
    height: int
    upscaled_width: int
    tile_cols: int
    tile_rows: int
    base_q_idx: int


def frame_header(payload: bytes, seq: SequenceHeader, temporal_id: int = 0, spatial_id: int = 0) -> FrameHeader:
    """A frame header (or frame) OBU's payload: uncompressed_header() of an intra frame, read up to
    quantization_params(); an inter frame or a repeated frame raises BitstreamError."""
    r = BitReader(payload, "AV1 frame header")
    frame_type, shown, error_resilient = _frame_type(r, seq)
    disable_cdf_update = r.flag()
    screen_content = r.f(1) if seq.force_screen_content_tools == SELECT else seq.force_screen_content_tools
    if screen_content and seq.force_integer_mv == SELECT:
        r.f(1)                                                         # force_integer_mv (1 in intra frames)
    r.f(seq.frame_id_length)                                           # current_frame_id
    size_override = not seq.reduced_still_picture_header and r.flag()
    r.f(seq.order_hint_bits)                                           # order_hint
    _buffer_removal_times(r, seq, temporal_id, spatial_id)
    if not (frame_type == KEY_FRAME and shown):
        refresh = r.f(8)
        if refresh != ALL_FRAMES and error_resilient and seq.enable_order_hint:
            r.f(8 * seq.order_hint_bits)                               # ref_order_hint[8]
    width, height, upscaled_width = _frame_size(r, seq, size_override)
    if r.flag():                                                       # render_and_frame_size_different
        r.f(32)
    if screen_content and upscaled_width == width:
        r.f(1)                                                         # allow_intrabc
    if not (seq.reduced_still_picture_header or disable_cdf_update):
        r.f(1)                                                         # disable_frame_end_update_cdf
    tile_cols, tile_rows = _tile_info(r, seq, width, height)
    return FrameHeader(frame_type, bool(screen_content), width, height, upscaled_width, tile_cols, tile_rows,
                       base_q_idx=r.f(8))


def _frame_type(r: BitReader, seq: SequenceHeader) -> tuple[int, bool, bool]:
    """frame_type, show_frame and error_resilient_mode; only intra frames are accepted."""
    if seq.reduced_still_picture_header:
        return KEY_FRAME, True, True
    if r.flag():
        raise BitstreamError("The AVIF image's first AV1 frame repeats an earlier frame (show_existing_frame).")
    frame_type, shown = r.f(2), r.flag()
    if frame_type not in (KEY_FRAME, INTRA_ONLY_FRAME):
        raise BitstreamError("The AVIF image's first AV1 frame is an inter frame, not an intra frame.")
    if shown and seq.decoder_model_info_present and not seq.equal_picture_interval:
        r.f(seq.frame_presentation_time_length)                        # temporal_point_info()
    if not shown:
        r.f(1)                                                         # showable_frame
    error_resilient = (frame_type == KEY_FRAME and shown) or r.flag()
    return frame_type, shown, error_resilient


def _buffer_removal_times(r: BitReader, seq: SequenceHeader, temporal_id: int, spatial_id: int) -> None:
    """The decoder model's buffer removal times of the operating points the frame belongs to."""
    if not (seq.decoder_model_info_present and r.flag()):
        return
    for idc, model in seq.operating_points:
        in_layer = (idc >> temporal_id) & 1 and (idc >> (spatial_id + 8)) & 1
        if model and (idc == 0 or in_layer):
            r.f(seq.buffer_removal_time_length)


def _frame_size(r: BitReader, seq: SequenceHeader, size_override: bool) -> tuple[int, int, int]:
    """frame_size() with superres_params(): the coded width and height, and the upscaled width."""
    if size_override:
        width, height = r.f(seq.frame_width_bits) + 1, r.f(seq.frame_height_bits) + 1
    else:
        width, height = seq.max_width, seq.max_height
    upscaled = width
    if seq.enable_superres and r.flag():                               # use_superres
        denom = r.f(3) + 9
        width = (upscaled * 8 + denom // 2) // denom
    return width, height, upscaled


def _tile_log2(block: int, target: int) -> int:
    """The smallest k with ``block << k`` ≥ ``target``."""
    k = 0
    while (block << k) < target:
        k += 1
    return k


def _tile_info(r: BitReader, seq: SequenceHeader, width: int, height: int) -> tuple[int, int]:
    """tile_info(): uniform or explicit tile spacing, then the context tile and tile size bytes;
    the numbers of tile columns and rows."""
    sb_shift = 5 if seq.use_128x128_superblock else 4
    mi_cols, mi_rows = 2 * ((width + 7) >> 3), 2 * ((height + 7) >> 3)
    sb_cols = (mi_cols + (1 << sb_shift) - 1) >> sb_shift
    sb_rows = (mi_rows + (1 << sb_shift) - 1) >> sb_shift
    max_tile_width_sb = MAX_TILE_WIDTH >> (sb_shift + 2)
    max_tile_area_sb = MAX_TILE_AREA >> (2 * (sb_shift + 2))
    min_log2_cols = _tile_log2(max_tile_width_sb, sb_cols)
    min_log2_tiles = max(min_log2_cols, _tile_log2(max_tile_area_sb, sb_rows * sb_cols))
    if r.flag():                                                       # uniform_tile_spacing_flag
        cols_log2 = _increments(r, min_log2_cols, _tile_log2(1, min(sb_cols, MAX_TILE_COLS)))
        rows_log2 = _increments(r, max(min_log2_tiles - cols_log2, 0), _tile_log2(1, min(sb_rows, MAX_TILE_ROWS)))
        cols, rows = _uniform_count(sb_cols, cols_log2), _uniform_count(sb_rows, rows_log2)
    else:
        widths = _explicit_sizes(r, sb_cols, max_tile_width_sb)
        area = (sb_rows * sb_cols) >> (min_log2_tiles + 1) if min_log2_tiles > 0 else sb_rows * sb_cols
        heights = _explicit_sizes(r, sb_rows, max(area // max(widths), 1))
        cols, rows = len(widths), len(heights)
        cols_log2, rows_log2 = _tile_log2(1, cols), _tile_log2(1, rows)
    if cols_log2 or rows_log2:
        r.f(cols_log2 + rows_log2 + 2)                                 # context_update_tile_id, tile_size_bytes
    return cols, rows


def _increments(r: BitReader, low: int, high: int) -> int:
    """A log2 tile count: ``low`` plus one for each set increment bit, up to ``high``."""
    value = low
    while value < high and r.flag():
        value += 1
    return value


def _uniform_count(total: int, size_log2: int) -> int:
    """The number of equal tiles (the last one smaller) that split ``total`` superblocks in 2^size_log2."""
    size = (total + (1 << size_log2) - 1) >> size_log2
    return (total + size - 1) // size


def _explicit_sizes(r: BitReader, total: int, largest: int) -> list[int]:
    """Tile sizes in superblocks, each coded with ns() up to ``largest``, until they cover ``total``."""
    sizes = []
    while sum(sizes) < total:
        sizes.append(r.ns(min(total - sum(sizes), largest)) + 1)
    return sizes


# The file's base_q_idx

def primary_frame_header(data: bytes) -> FrameHeader:
    """The frame header of an AVIF file's primary image (of a grid's first tile); a file that is
    not AVIF, or is truncated or corrupt, raises BitstreamError."""
    data = bytes(data)
    meta = _meta_boxes(data)
    item_id = _av1_item(data, meta)
    config, item = _config_obus(data, meta, item_id), _item_data(data, meta, item_id)
    seq = None
    for stream in (config, item):
        for kind, temporal_id, spatial_id, payload in _obus(stream):
            if kind == OBU_SEQUENCE_HEADER:
                seq = sequence_header(payload)
            elif kind in (OBU_FRAME_HEADER, OBU_FRAME):
                if seq is None:
                    raise BitstreamError("The AVIF image's AV1 data has no sequence header before its frame.")
                return frame_header(payload, seq, temporal_id, spatial_id)
    raise BitstreamError("The AVIF image's AV1 data has no frame header.")


def base_q_idx(data: bytes) -> int:
    """The AV1 ``base_q_idx`` (0..255) of an AVIF file's primary image."""
    return primary_frame_header(data).base_q_idx

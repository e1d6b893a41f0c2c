"""Image <-> real bytes: the ``.drc`` container, the JPEG, AVIF and neural base codecs, the
post-filter and the neural codec's encoder-side refinement."""
from .avif import is_avif_file, read_avif_file
from .bitstream import Encoded, parse
from .jpeg import is_jpeg_file, read_jpeg_file


def read(data: bytes) -> Encoded:
    """What a receiver was given: a ``.drc`` container, or a plain JPEG or AVIF file (its bytes are
    that codec's payload, exactly as inside a ``.drc``)."""
    if is_jpeg_file(data):
        return read_jpeg_file(data)
    return read_avif_file(data) if is_avif_file(data) else parse(data)

"""Image <-> real bytes: the ``.drc`` container, the JPEG and neural base codecs, the post-filter
and the neural codec's encoder-side refinement."""
from .bitstream import Encoded, parse
from .jpeg import is_jpeg_file, read_jpeg_file


def read(data: bytes) -> Encoded:
    """What a receiver was given: a ``.drc`` container, or a plain JPEG file (its bytes are the
    JPEG codec's payload, exactly as inside a ``.drc``)."""
    return read_jpeg_file(data) if is_jpeg_file(data) else parse(data)

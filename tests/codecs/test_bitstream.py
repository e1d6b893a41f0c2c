import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dirac_demo.codecs import Encoded, pack, parse
from dirac_demo.errors import BitstreamError, DiracError

JPEG = Encoded(codec="jpeg", width=96, height=72, chunks=[b"\xff\xd8payload\xff\xd9"], quality=10)
NEURAL = Encoded(codec="neural", width=67, height=45, chunks=[b"yyyy", b"zz"], lmbda=0.0016, scale_q=1024,
                 weights_id=0x1234ABCD)


@pytest.mark.parametrize("enc", [JPEG, NEURAL])
def test_roundtrip(enc):
    out = parse(pack(enc))
    assert (out.codec, out.width, out.height, out.chunks) == (enc.codec, enc.width, enc.height, enc.chunks)
    assert out.quality == enc.quality and out.scale_q == enc.scale_q and out.weights_id == enc.weights_id
    assert out.lmbda == pytest.approx(enc.lmbda, rel=1e-7)


def test_empty_foreign_truncated_corrupted():
    data = pack(NEURAL)
    with pytest.raises(BitstreamError, match="empty"):
        parse(b"")
    with pytest.raises(BitstreamError, match="magic"):
        parse(b"\x89PNG\r\n\x1a\n" + data)
    for n in range(1, len(data)):
        with pytest.raises(BitstreamError):
            parse(data[:n])
    for i in range(len(data)):
        for bit in (0, 3, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                parse(bytes(bad))
    with pytest.raises(BitstreamError, match="trailing|checksum"):
        parse(data + b"x")


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def test_version_1_files_still_parse():
    """Version 1 wrote the neural parameters without the weights id: such files read with id 0 (unchecked)."""
    body = bytearray(pack(NEURAL)[:-4])
    assert body[4] == 2 and struct.unpack_from(">H", body, 10)[0] == 10
    body[4] = 1
    body[10:12] = struct.pack(">H", 6)
    del body[12 + 6:12 + 10]          # drop the weights id
    out = parse(_with_crc(bytes(body)))
    assert (out.scale_q, out.chunks, out.weights_id) == (NEURAL.scale_q, NEURAL.chunks, 0)
    body[4] = 2                        # the same 6-byte block is malformed in a version-2 file
    with pytest.raises(BitstreamError, match="neural-codec parameters"):
        parse(_with_crc(bytes(body)))
    with pytest.raises(BitstreamError, match="32 bits"):
        pack(Encoded(**{**NEURAL.__dict__, "weights_id": 2 ** 32}))


def test_structurally_bad_but_valid_checksum():
    body = pack(JPEG)[:-4]
    bad_version = bytearray(body)
    bad_version[4] = 9
    with pytest.raises(BitstreamError, match="version"):
        parse(_with_crc(bytes(bad_version)))
    bad_codec = bytearray(body)
    bad_codec[5] = 7
    with pytest.raises(BitstreamError, match="codec"):
        parse(_with_crc(bytes(bad_codec)))
    bad_quality = bytearray(body)
    bad_quality[12] = 0   # quality byte
    with pytest.raises(BitstreamError, match="JPEG parameters"):
        parse(_with_crc(bytes(bad_quality)))


def test_error_is_one_sentence():
    with pytest.raises(BitstreamError) as info:
        parse(b"DRAC\x01")
    msg = str(info.value)
    assert msg.endswith(".") and "\n" not in msg and isinstance(info.value, DiracError)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    try:
        parse(data)
    except BitstreamError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([JPEG, NEURAL]), st.data())
def test_fuzz_mutations_with_fixed_crc(enc, data):
    """Mutate the body, then repair the checksum: the parser must still only ever raise BitstreamError."""
    body = bytearray(pack(enc)[:-4])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    try:
        out = parse(_with_crc(bytes(body[:cut])))
    except BitstreamError:
        return
    assert out.codec in ("jpeg", "neural") and out.width > 0 and out.height > 0

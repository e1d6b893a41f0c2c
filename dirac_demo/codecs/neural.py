"""The neural base codec: image tensor -> :class:`Encoded` (real bytes) -> tensor.

:class:`NeuralCodec` is a mean-scale hyperprior (Minnen et al. 2018) from CompressAI's layers
and entropy coders, made multi-rate by latent scaling (paper B.2, eq. 10):
s = α_s·λ_rate^β_s, y is multiplied by s before quantisation and divided by s after decoding;
optionally followed by a decoder-side post-filter (:mod:`.post_filter`) that reads λ_rate.
"""
from __future__ import annotations

import copy
import hashlib
import math
import struct
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

with warnings.catch_warnings():   # compressai's import uses the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN
    from compressai.models import CompressionModel
    from compressai.models.utils import conv, deconv
    from compressai.ops import quantize_ste

from ..errors import BitstreamError, InputError, WeightsError
from ..images import crop, pad_to_multiple
from .base import BaseCodec, Encoded, RateRange, file_size
from .post_filter import PostFilter
from .refine import MAX_REFINE, refine_latents

SCALE_STEP = 1024           # the latent scale s travels as round(s * 1024) in 16 bits
LMBDA_MIN, LMBDA_MAX = 0.0004, 0.016
LMBDA_REF = 0.0016   # the single-rate operating point of B.2; s(λ_ref) starts at 1


@dataclass
class CodecConfig:
    """Neural codec architecture; stored next to the weights as JSON."""

    N: int = 96
    M: int = 128
    post_channels: int = 0    # decoder-side post-filter (:mod:`.post_filter`); 0: none
    post_blocks: int = 4
    post_down: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


class NeuralCodec(CompressionModel):
    """Multi-rate mean-scale hyperprior with latent scaling (B.2).

    ``forward(x, lmbda)`` is the training path (mixed quantisation: the decoder sees
    straight-through rounded latents, the rate term uses additive uniform noise);
    ``compress``/``decompress`` produce and read real bytes with CompressAI's rANS coder.
    """

    multiple = 64   # 4 stride-2 stages in g_a, 2 more in h_a

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CodecConfig()
        N, M = cfg.N, cfg.M
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        self.h_a = nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
                                 conv(N, N), nn.LeakyReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(deconv(N, M), nn.LeakyReLU(inplace=True), deconv(M, M * 3 // 2),
                                 nn.LeakyReLU(inplace=True), conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))
        # eq. (10): s = α_s · λ^β_s, parametrised in log space so s stays positive
        self.log_alpha = nn.Parameter(torch.tensor(0.5 * math.log(LMBDA_REF)))
        self.beta = nn.Parameter(torch.tensor(-0.5))
        self.post = (PostFilter(cfg.post_channels, cfg.post_blocks, cfg.post_down)
                     if cfg.post_channels else None)

    # the sender's side: the analysis transforms and the latent-scale law (s travels in the file)
    ENCODER_PREFIXES = ("g_a.", "h_a.", "log_alpha", "beta")

    def encoder_parameter_names(self) -> set[str]:
        """Names of the parameters only the encoder uses; the decoder never reads them."""
        return {n for n, _ in self.named_parameters() if n.startswith(self.ENCODER_PREFIXES)}

    def post_filter_parameter_names(self) -> set[str]:
        """Names of the post-filter's parameters (empty without one)."""
        return {n for n, _ in self.named_parameters() if n.startswith("post.")}

    # ---- latent scaling -------------------------------------------------------------
    def scale(self, lmbda: float | torch.Tensor) -> torch.Tensor:
        """s(λ) quantised to the 16-bit grid that travels in the bitstream (straight-through)."""
        lam = torch.as_tensor(lmbda, dtype=torch.float32, device=self.beta.device)
        s = torch.exp(self.log_alpha + self.beta * torch.log(lam))
        s_q = torch.clamp(torch.round(s * SCALE_STEP), 1, 65535) / SCALE_STEP
        return s + (s_q - s).detach()

    def scale_q(self, lmbda: float) -> int:
        """The integer sent in the bitstream for λ: round(s·1024)."""
        return int(round(float(self.scale(lmbda).detach()) * SCALE_STEP))

    def bitstream_scale(self, lmbda: float) -> float:
        """s(λ) as the decoder reads it from the bitstream: :meth:`scale_q` / 1024."""
        return self.scale_q(lmbda) / SCALE_STEP

    # ---- training -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lmbda: float, bf16: bool = False) -> dict:
        """Training path: reconstruction and likelihoods at rate λ (loss = D + λ·R).

        ``bf16`` runs the two image-resolution transforms (g_a, g_s: almost all of the
        compute) under bf16 autocast; latents, hyperprior, quantisation and likelihoods
        stay in fp32, since bf16's 8-bit mantissa cannot resolve the rounding grid.
        """
        s = self.scale(lmbda)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            y = self.g_a(x)
        y = y.float() * s
        z = self.h_a(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_offset = self.entropy_bottleneck._get_medians()
        z_hat = quantize_ste(z - z_offset) + z_offset
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        _, y_likelihoods = self.gaussian_conditional(y, scales_hat, means=means_hat)
        y_hat = quantize_ste(y - means_hat) + means_hat
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            x_hat = self.synthesis(y_hat, s, lmbda)
        return {"x_hat": x_hat.float(), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, lmbda: float, post: bool = True) -> torch.Tensor:
        """The decoder's output at rate λ with hard quantisation, without entropy coding.

        Equals ``decompress(compress(x))`` up to float rounding; used to make training pairs.
        ``post=False`` stops before the post-filter: what DIRAC is conditioned on (its pairs and
        its threshold table).
        """
        s = self.bitstream_scale(lmbda)
        h, w = x.shape[-2:]
        y, z = self.encode_latents(x, lmbda)
        z_off = self.entropy_bottleneck._get_medians()
        z_hat = torch.round(z - z_off) + z_off
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        y_hat = torch.round(y - means_hat) + means_hat
        return self.synthesis(y_hat, s, float(np.float32(lmbda)), (h, w), post).clamp_(0, 1)

    def synthesis(self, y_hat: torch.Tensor, s: float | torch.Tensor, lmbda: float,
                  size: tuple[int, int] | None = None, post: bool = True) -> torch.Tensor:
        """The decoder's image from latents ŷ (times s): g_s(ŷ / s), cropped to ``size`` when given,
        then the post-filter (if the codec has one and ``post``) on the clamped image. Not clamped
        itself without a post-filter (the training path), so callers clamp what they show."""
        x_hat = self.g_s(y_hat / s)
        if size is not None:
            x_hat = crop(x_hat, *size)
        if self.post is None or not post:
            return x_hat
        return self.post(x_hat.float().clamp(0, 1), lmbda)

    # ---- real bytes -----------------------------------------------------------------
    def weights_id(self) -> int:
        """A 32-bit fingerprint of the decoder's parameters, written into every neural bitstream.

        A payload decoded with other weights than those that encoded it gives a wrong image
        (or garbage) without any error from the entropy coder, so the receiver compares ids.
        Only the parameters the decoder reads enter (g_s, h_s, the entropy bottleneck): a new
        encoder for the same decoder (``train_codec --train encoder``) keeps the id, and the
        files of both decode. Not CompressAI's CDF tables, which ``update()`` derives with
        float arithmetic that may differ between machines; never 0, which means "unknown".
        """
        return self._fingerprint(skip=self.encoder_parameter_names())

    def legacy_weights_id(self) -> int:
        """The id files written before it named the decoder only: a fingerprint of every parameter."""
        return self._fingerprint(skip=set())

    def _fingerprint(self, skip: set[str]) -> int:
        h = hashlib.sha256()
        for name, p in sorted(self.named_parameters()):
            if name in skip:
                continue
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return int.from_bytes(h.digest()[:4], "big") or 1

    def hyper_synthesis(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of y from the decoded z, computed in float64 for the entropy coder.

        The decoder must pick exactly the encoder's CDF index for every symbol, and an index
        is a threshold on a scale: in float32, the last bits of h_s differ between machines and
        kernels (oneDNN or not, another CPU, another BLAS) and a scale next to a threshold
        flips, which derails the rANS decoder. In float64 those differences are ~1e-16
        relative and a flip practically never happens, so files decode on other machines;
        h_s runs at 1/64 of the image resolution, so the cost is small.
        """
        h_s = copy.deepcopy(self.h_s).double()
        scales, means = h_s(z_hat.double()).chunk(2, 1)
        return scales, means

    def encode_latents(self, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The amortised encoder's latents of ``x`` at rate λ: y (times the bitstream's scale s(λ)) and z."""
        y = self.g_a(pad_to_multiple(x, self.multiple)) * self.bitstream_scale(lmbda)
        return y, self.h_a(y)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, lmbda: float, refine: int = 0,  # type: ignore[override]
                 callback=None) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at rate λ to real entropy-coded bytes.

        ``refine`` > 0 optimises this image's latents for that many iterations first
        (:mod:`.refine`, SGA): smaller files at the same quality, the same decoder, a slower
        encoder. ``callback(i, n)`` reports the iterations.
        """
        if not LMBDA_MIN * 0.999 <= lmbda <= LMBDA_MAX * 1.001:   # also refuses NaN
            raise InputError(f"λ_rate must be in [{LMBDA_MIN}, {LMBDA_MAX}], got {lmbda}.")
        if not 0 <= int(refine) <= MAX_REFINE:
            raise InputError(f"Refinement iterations must be in 0..{MAX_REFINE}, got {refine}.")
        h, w = x.shape[-2:]
        scale_q = self.scale_q(lmbda)
        if refine:
            y, z = refine_latents(self, x, lmbda, int(refine), callback=callback)
        else:
            y, z = self.encode_latents(x, lmbda)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales_hat, means_hat = self.hyper_synthesis(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_strings = self.gaussian_conditional.compress(y.double(), indexes, means=means_hat)
        return Encoded(codec=NeuralBase.name, width=w, height=h, chunks=[y_strings[0], z_strings[0]],
                       lmbda=float(np.float32(lmbda)), scale_q=scale_q, weights_id=self.weights_id())

    @torch.no_grad()
    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Decode an :class:`Encoded` to ``{"x_hat": (1, 3, H, W) in [0, 1]}``.

        With a post-filter, ``"x_cond"`` is the image before it: DIRAC is conditioned on g_s's
        output, which is what codec+DIRAC was trained on (the filter's MSE gain and DIRAC's first
        step overlap, so DIRAC on the filtered image over-corrects).
        """
        if len(enc.chunks) != 2:
            raise BitstreamError("A neural bitstream must hold exactly two payload chunks.")
        mine = self.weights_id()
        if enc.weights_id and enc.weights_id != mine and enc.weights_id != self.legacy_weights_id():
            raise BitstreamError(f"This file was made with other neural-codec weights (id {enc.weights_id:08x}; "
                                 f"these are {mine:08x}): decode it with the weights that encoded it.")
        hp = -(-enc.height // self.multiple) * self.multiple
        wp = -(-enc.width // self.multiple) * self.multiple
        shape = (hp // self.multiple, wp // self.multiple)
        n_z = self.config.N * shape[0] * shape[1]
        n_y = self.config.M * shape[0] * shape[1] * 16
        try:
            z_hat = self.entropy_bottleneck.decompress([_guard(enc.chunks[1], n_z)], shape)
            scales_hat, means_hat = self.hyper_synthesis(z_hat)
            indexes = self.gaussian_conditional.build_indexes(scales_hat)
            y_hat = self.gaussian_conditional.decompress([_guard(enc.chunks[0], n_y)], indexes,
                                                         means=means_hat).float()
        except Exception as exc:  # noqa: BLE001 - the rANS decoder raises assorted errors
            raise BitstreamError(f"The neural payload cannot be decoded ({type(exc).__name__}).") from exc
        if not torch.isfinite(y_hat).all():
            raise BitstreamError("The neural payload decodes to invalid values.")
        x_pre = self.synthesis(y_hat, enc.scale_q / SCALE_STEP, enc.lmbda, (enc.height, enc.width), post=False)
        if not torch.isfinite(x_pre).all():
            raise BitstreamError("The neural payload decodes to invalid values.")
        if self.post is None:
            return {"x_hat": x_pre.clamp_(0, 1)}
        x_cond = x_pre.clamp(0, 1)
        x_hat = self.post(x_cond, enc.lmbda)
        if not torch.isfinite(x_hat).all():
            raise BitstreamError("The neural payload decodes to invalid values.")
        return {"x_hat": x_hat.clamp_(0, 1), "x_cond": x_cond}


def _guard(string: bytes, num_symbols: int) -> bytes:
    """Zero-pad an rANS string so a malformed one cannot make the decoder read past its end.

    CompressAI's decoder reads at most one 32-bit word per symbol once its state runs into
    zeros (plus a bounded number while state bits remain), so 4 bytes per symbol and a margin
    keep every read inside the buffer; a well-formed string never reaches the padding.
    """
    return string + bytes(4 * num_symbols + 4096)


def sample_lmbda(u: float) -> float:
    """Eq. (11): λ_rate log-uniform in [λ_min, λ_max] from u ∈ [0, 1]."""
    return 2.0 ** ((math.log2(LMBDA_MAX) - math.log2(LMBDA_MIN)) * u + math.log2(LMBDA_MIN))


class NeuralBase(BaseCodec):
    """The neural codec's row of the codec table: its rate and ``.drc`` parameters, and the trained
    :class:`NeuralCodec` it runs once :meth:`bind` gives it one (the weights ``assets/codec``)."""

    name, codec_id, label, model, weights = "neural", 2, "neural codec", "dirac_neural", "codec"
    refines = True
    plot_label, color = "Neural", "tab:red"
    description = "a mean-scale hyperprior made multi-rate by latent scaling (paper B.2), λ_rate 0.0004–0.016"
    sweep = (0.0004, 0.0016, 0.006, 0.016)
    rates = RateRange(LMBDA_MIN, LMBDA_MAX, LMBDA_REF, "lmbda", "neural λ_rate", integer=False, log=True,
                      demo=LMBDA_REF)
    _PARAMS = struct.Struct(">fHI")

    def __init__(self, net: NeuralCodec | None = None) -> None:
        self.net = net

    def bind(self, net: NeuralCodec) -> "NeuralBase":
        """This row running the trained codec ``net`` (fp32, on the CPU)."""
        return NeuralBase(net.eval().cpu())

    def _trained(self) -> NeuralCodec:
        if self.net is None:
            raise WeightsError("The neural codec has no trained weights loaded.")
        return self.net

    def compress(self, x: torch.Tensor, rate: float, refine: int = 0, callback=None, **opts) -> Encoded:
        """Real bytes at λ_rate ``rate`` (``refine``: SGA iterations, :meth:`NeuralCodec.compress`)."""
        return self._trained().compress(x, float(rate), refine=refine, callback=callback)

    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:
        return self._trained().decompress(enc)

    def params(self, enc: Encoded) -> bytes:
        if not 0 <= enc.weights_id < 2 ** 32:
            raise BitstreamError("The weights id must fit in 32 bits.")
        return self._PARAMS.pack(enc.lmbda, enc.scale_q, enc.weights_id)

    def read_params(self, enc: Encoded, params: bytes, version: int) -> None:
        if len(params) != (6 if version == 1 else 10):   # version 1 has no weights id
            raise BitstreamError("Bad neural-codec parameters in the bitstream.")
        enc.lmbda, enc.scale_q = struct.unpack(">fH", params[:6])
        enc.weights_id = struct.unpack(">I", params[6:])[0] if version > 1 else 0
        if not (LMBDA_MIN * 0.999 <= enc.lmbda <= LMBDA_MAX * 1.001) or enc.scale_q == 0:
            raise BitstreamError("Bad neural-codec parameters in the bitstream.")

    def describe(self, enc: Encoded, nbytes: int) -> str:
        return f"{self.name} {enc.width}x{enc.height} lambda {enc.lmbda:.6g} (s={enc.scale_q}/1024), {file_size(enc, nbytes)}"

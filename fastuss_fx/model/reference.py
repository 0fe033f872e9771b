"""The official TUSS checkpoints in our model: their hparams as a ``layout: tuss`` config, their
tensors under our names.

The official files (``merlresearch/unified-source-separation``, AGPL-3.0-or-later) hold a
state dict with keys ``model.separator.<name>``; ``hparams.yaml`` describes the network.
Everything here is written from the documented facts of that format (see the README,
"Use the official TUSS weights"); a field or tensor we cannot run exactly is refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from fastuss_fx.config import ModelConfig, PathConfig, StackConfig, StftConfig
from fastuss_fx.model.tuss import TUSS
from fastuss_fx.prompts import PROMPTS

KEY_PREFIXES = ("model.separator.", "separator.")
"""Prefixes of the official keys (``.pth``/``.ckpt``, and after ``separate.py`` strips ``model.``)."""

ROPE_THETA = 10000.0
_MODULES = {"cross_prompt_module": "cross_prompt", "cond_tse_module": "tse"}
_PATHS = {"freq_path": "freq", "frame_path": "time"}
_IGNORED_MODULE_FIELDS = {"flash_attention"}  # selects an attention kernel, no effect on the numbers


class UnsupportedCheckpoint(ValueError):
    """An official checkpoint or hparams file that our model cannot run exactly."""


def _require(ok: bool, where: str, field: str, value: Any, expected: str) -> None:
    if not ok:
        raise UnsupportedCheckpoint(f"{where}: {field} = {value!r} cannot be run exactly (expected {expected})")


def _mapping(value: Any, where: str, field: str) -> Mapping[str, Any]:
    _require(isinstance(value, Mapping), where, field, value, "a mapping")
    return value


def config_from_hparams(hparams: Mapping[str, Any], name: str, where: str = "hparams.yaml") -> ModelConfig:
    """The ``layout: tuss`` config of an official ``hparams.yaml`` (already parsed).

    Raises:
        UnsupportedCheckpoint: naming the first field whose value our model cannot reproduce.
    """
    _require(hparams.get("model_name") == "tuss", where, "model_name", hparams.get("model_name"), "tuss")
    stft = _stft_config(hparams, where)
    _require(hparams.get("variance_normalization") is True, where, "variance_normalization",
             hparams.get("variance_normalization"), "true")  # fmt: skip
    conf = _mapping(hparams.get("model_conf"), where, "model_conf")
    known = {"prompts", "conf_cross_prompt_module", "conf_cond_tse_module", "nblocks_cross_prompt_module",
             "nblocks_cond_tse_module", "sample_rate", "stft_size", "eps", "prompt_size", "use_sos_token"}  # fmt: skip
    unknown = sorted(set(conf) - known)
    _require(not unknown, where, "model_conf", unknown, f"only the fields {sorted(known)}")
    prompts = conf.get("prompts")
    _require(isinstance(prompts, list) and sorted(prompts) == sorted(PROMPTS), where, "model_conf.prompts", prompts,
             f"the eight kinds {list(PROMPTS)}")  # fmt: skip
    _require(conf.get("use_sos_token", True) is True, where, "model_conf.use_sos_token", conf.get("use_sos_token"),
             "true")  # fmt: skip
    _require(conf.get("prompt_size", 1) == 1, where, "model_conf.prompt_size", conf.get("prompt_size"), "1")
    _require(conf.get("eps", 1e-5) == 1e-5, where, "model_conf.eps", conf.get("eps"), "1e-05")
    _require(conf.get("sample_rate", 48000) == stft.sample_rate, where, "model_conf.sample_rate",
             conf.get("sample_rate"), f"the STFT's {stft.sample_rate}")  # fmt: skip
    _require(conf.get("stft_size", 2048) == stft.n_fft, where, "model_conf.stft_size", conf.get("stft_size"),
             f"encoder_conf.fft_size {stft.n_fft}")  # fmt: skip
    cross, cross_groups, dim = _stack(conf, "cross_prompt_module", 4, where)
    tse, tse_groups, tse_dim = _stack(conf, "cond_tse_module", 2, where)
    _require(tse_dim == dim, where, "model_conf.conf_cond_tse_module.emb_dim", tse_dim, f"the cross-prompt {dim}")
    _require(tse_groups == cross_groups, where, "model_conf.conf_cond_tse_module.num_groups", tse_groups,
             f"the cross-prompt {cross_groups}")  # fmt: skip
    css = hparams.get("css_conf") or {}
    for flag in ("normalize_segment_scale", "solve_perm"):
        _require(not css.get(flag, False), where, f"css_conf.{flag}", css.get(flag), "false")
    return ModelConfig(
        name=name,
        description=f"TUSS checkpoint {name!r} in the reference layout",
        stft=stft,
        dim=dim,
        norm_groups=cross_groups,
        cross_prompt=cross,
        tse=tse,
        decoder_hidden=4 * dim,
        decoder_layers=2,
        layout="tuss",
        reference_seconds=float(css.get("segment_size", 6)),
    )


def _stft_config(hparams: Mapping[str, Any], where: str) -> StftConfig:
    for side in ("encoder", "decoder"):
        _require(hparams.get(f"{side}_name") == "stft", where, f"{side}_name", hparams.get(f"{side}_name"), "stft")
    enc, dec = _mapping(hparams.get("encoder_conf"), where, "encoder_conf"), hparams.get("decoder_conf") or {}
    _require(dict(enc) == dict(dec), where, "decoder_conf", dec, "equal to encoder_conf")
    n_fft, hop = enc.get("fft_size", 0), enc.get("hop_length", 0)
    _require(enc.get("window_length", n_fft) == n_fft, where, "encoder_conf.window_length",
             enc.get("window_length"), f"fft_size {n_fft}")  # fmt: skip
    _require(enc.get("window_type") == "sqrt_hann", where, "encoder_conf.window_type", enc.get("window_type"),
             "sqrt_hann")  # fmt: skip
    _require(enc.get("normalize") is None, where, "encoder_conf.normalize", enc.get("normalize"), "null")
    _require(isinstance(n_fft, int) and isinstance(hop, int) and n_fft % hop == 0 and hop * 2 <= n_fft, where,
             "encoder_conf.hop_length", hop, f"a divisor of fft_size {n_fft}, at most half of it")  # fmt: skip
    rate = (hparams.get("model_conf") or {}).get("sample_rate", 48000)
    return StftConfig(n_fft=int(n_fft), hop=int(hop), sample_rate=rate, center=True)


def _stack(conf: Mapping[str, Any], module: str, default_blocks: int, where: str) -> tuple[StackConfig, int, int]:
    """A module's ``StackConfig``, its norm groups and its width."""
    field = f"model_conf.conf_{module}"
    mod = _mapping(conf.get(f"conf_{module}"), where, field)
    known = {"emb_dim", "num_groups", "tf_order", "n_heads", "attention_dim", "freq_ffn_config", "frame_ffn_config",
             "dropout", "eps"} | _IGNORED_MODULE_FIELDS  # fmt: skip
    unknown = sorted(set(mod) - known)
    _require(not unknown, where, field, unknown, f"only the fields {sorted(known)}")
    _require(mod.get("tf_order", "ft") == "ft", where, f"{field}.tf_order", mod.get("tf_order"), "ft")
    _require(mod.get("dropout", 0.0) == 0.0, where, f"{field}.dropout", mod.get("dropout"), "0")
    _require(mod.get("eps", 1e-5) == 1e-5, where, f"{field}.eps", mod.get("eps"), "1e-05")
    dim, heads, attention = mod.get("emb_dim", 128), mod.get("n_heads", 4), mod.get("attention_dim", 128)
    _require(attention % heads == 0 and (attention // heads) % 2 == 0, where, f"{field}.attention_dim", attention,
             f"{heads} heads of even size")  # fmt: skip
    paths = {}
    for path, key in (("freq", "freq_ffn_config"), ("time", "frame_ffn_config")):
        ffns: list = mod[key] if isinstance(mod.get(key), list) else []
        _require(len(ffns) in (1, 2), where, f"{field}.{key}", mod.get(key), "a list of 1 or 2")
        confs = [dict(f.get("conf", {})) for f in ffns]
        _require(all(c == confs[0] for c in confs), where, f"{field}.{key}", ffns, "equal entries")
        ffn = confs[0]
        unknown = sorted(set(ffn) - {"dim_inner", "conv1d_kernel", "conv1d_shift"})
        _require(not unknown, where, f"{field}.{key}[].conf", unknown, "dim_inner, conv1d_kernel, conv1d_shift")
        _require(ffn.get("conv1d_shift", 1) == 1, where, f"{field}.{key}[].conf.conv1d_shift",
                 ffn.get("conv1d_shift"), "1")  # fmt: skip
        paths[path] = PathConfig(
            ffn_hidden=ffn.get("dim_inner") or 4 * dim,
            kernel=ffn.get("conv1d_kernel", 4),
            attention_dim=attention,
            heads=heads,
            macaron=len(ffns) == 2,
            ffn_padding="full",
        )
    blocks = conf.get(f"nblocks_{module}", default_blocks)
    return StackConfig(blocks=blocks, freq=paths["freq"], time=paths["time"]), mod.get("num_groups", 4), dim


# ------------------------------------------------------------------------------------------- tensors
def strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys without their ``model.separator.`` (or ``separator.``) prefix."""
    out = {}
    for key, value in state.items():
        prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            raise UnsupportedCheckpoint(f"unexpected key {key!r}: official TUSS keys start with {KEY_PREFIXES[0]!r}")
        out[key[len(prefix) :]] = value
    return out


def _interleaved_to_half(head_dim: int) -> Tensor:
    """Row order taking RoPE's interleaved pairs (2i, 2i+1) to our half-split pairs (i, i + E/2)."""
    return torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])


def _qkv_rows(attention_dim: int, heads: int) -> Tensor:
    """Row permutation of a [3 * A, D] qkv weight: queries and keys per head to the half-split layout."""
    head_dim = attention_dim // heads
    within = _interleaved_to_half(head_dim)
    rows = [torch.arange(attention_dim * 2, attention_dim * 3)]  # values keep their order
    qk = torch.cat([part * attention_dim + h * head_dim + within for part in (0, 1) for h in range(heads)])
    return torch.cat([qk, *rows])


def _glu_rows(width: int) -> Tensor:
    """Decoder output rows [re(w), im(w)] per GLU half -> our interleaved [re0, im0, re1, ...]."""
    half = torch.stack([torch.arange(width), torch.arange(width, 2 * width)], dim=1).flatten()
    return torch.cat([half, half + 2 * width])


def rope_frequencies(head_dim: int) -> Tensor:
    """The RoPE frequencies the reference stores (theta 10000), float32."""
    return 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)


def convert_state_dict(official: Mapping[str, Tensor], model: TUSS) -> dict[str, Tensor]:
    """Official tensors (any prefix from ``KEY_PREFIXES``) -> a full state dict of ``model``.

    Every official key must be used and every tensor of ``model`` filled (attention biases,
    which the reference does not have, are zeros); shapes are checked key by key.

    Raises:
        UnsupportedCheckpoint: missing, unexpected or misshapen keys, or RoPE frequencies other
        than the standard ones (theta 10000).
    """
    if not model.config.reference_layout:
        raise ValueError(f"variant {model.config.name!r} is not in the reference layout (layout: tuss)")
    source = strip_prefix(official)
    target = model.state_dict()
    out: dict[str, Tensor] = {}
    used: set[str] = set()

    def take(key: str) -> Tensor:
        if key not in source:
            raise UnsupportedCheckpoint(f"the checkpoint has no tensor {KEY_PREFIXES[0]}{key}")
        used.add(key)
        return source[key].detach().to(torch.float32)

    def put(name: str, value: Tensor, source_key: str) -> None:
        expected = target[name].shape
        if value.shape != expected:
            raise UnsupportedCheckpoint(
                f"{KEY_PREFIXES[0]}{source_key}: shape {tuple(value.shape)} does not fit {name} {tuple(expected)}"
            )
        out[name] = value

    _convert_bands(model, take, put)
    table = torch.stack([take(f"prompts.{prompt}").reshape(-1) for prompt in PROMPTS])  # our kind order
    put("prompt_table", table[:, None], "prompts.*")
    put("sos_token", take("sos_token").reshape(1, -1), "sos_token")
    for ours, theirs, stack in (("cross_prompt", "cross_prompt_module", model.config.cross_prompt),
                                ("tse", "cond_tse_module", model.config.tse)):  # fmt: skip
        for block in range(stack.blocks):
            for their_path, our_path in _PATHS.items():
                cfg: PathConfig = getattr(stack, our_path)
                _convert_path(f"{ours}.{block}.{our_path}", f"{theirs}.{block}.{their_path}", cfg, take, put)
    left = sorted(set(source) - used)
    if left:
        raise UnsupportedCheckpoint(f"{len(left)} checkpoint tensor(s) have no place in the model: {left[:5]}")
    missing = sorted(set(target) - set(out))
    if missing:
        raise UnsupportedCheckpoint(f"the checkpoint does not fill {len(missing)} tensor(s): {missing[:5]}")
    return out


def _convert_bands(model: TUSS, take, put) -> None:
    """Band-split encoder and band-wise decoder: one official module per band -> per-width groups."""
    groups = model.encoder.groups
    slots = {band: (g, j) for g, members in enumerate(groups.member_lists) for j, band in enumerate(members)}
    n_groups = len(groups.widths)
    stacks: dict[str, list[list[Tensor | None]]] = {}

    def place(name: str, g: int, j: int, value: Tensor) -> None:
        rows = stacks.setdefault(name, [[None] * groups.group_sizes()[k] for k in range(n_groups)])
        rows[g][j] = value

    for band, (g, j) in sorted(slots.items()):
        width = groups.widths[g]
        enc = f"band_split_module.band_split_module.{band}"
        place("encoder.gains", g, j, take(f"{enc}.0.weight"))
        place("encoder.norm_biases", g, j, take(f"{enc}.0.bias"))
        place("encoder.weights", g, j, take(f"{enc}.1.weight")[..., 0].T)
        place("encoder.biases", g, j, take(f"{enc}.1.bias"))
        dec = f"band_split_module.bandwise_decoding_module.{band}"
        place("decoder.gains", g, j, take(f"{dec}.0.weight"))
        place("decoder.norm_biases", g, j, take(f"{dec}.0.bias"))
        place("decoder.w_in", g, j, take(f"{dec}.1.weight")[..., 0].T)
        place("decoder.b_in", g, j, take(f"{dec}.1.bias"))
        place("decoder.w_mid", g, j, take(f"{dec}.3.weight")[..., 0].T)
        place("decoder.b_mid", g, j, take(f"{dec}.3.bias"))
        rows = _glu_rows(width)
        w_out, b_out = take(f"{dec}.5.weight")[..., 0], take(f"{dec}.5.bias")
        if w_out.shape[0] != 4 * width:
            raise UnsupportedCheckpoint(f"{KEY_PREFIXES[0]}{dec}.5.weight: {w_out.shape[0]} rows, expected {4 * width}")
        place("decoder.w_out", g, j, w_out[rows].T)
        place("decoder.b_out", g, j, b_out[rows])
    for name, per_group in stacks.items():
        for g, members in enumerate(per_group):
            put(f"{name}.{g}", torch.stack([m for m in members if m is not None]), f"band_split_module (band {name})")


def _convert_path(ours: str, theirs: str, cfg: PathConfig, take, put) -> None:
    """One Locoformer path: macaron FFNs (official ``ffn.1`` runs before attention), attention."""
    ffns = {"ffn_out": "0", "ffn_in": "1"} if cfg.macaron else {"ffn_out": "0"}
    for our_ffn, index in ffns.items():
        put(f"{ours}.{our_ffn}.norm.gain", take(f"{theirs}.ffn_norm.{index}.gamma"), f"{theirs}.ffn_norm.{index}")
        conv, deconv = f"{theirs}.ffn.{index}.conv1d", f"{theirs}.ffn.{index}.deconv1d"
        put(f"{ours}.{our_ffn}.conv_in.main.weight", take(f"{conv}.weight"), f"{conv}.weight")
        put(f"{ours}.{our_ffn}.conv_in.main.bias", take(f"{conv}.bias"), f"{conv}.bias")
        # a stride-1 transposed conv is a valid conv with in/out swapped and the kernel reversed
        put(f"{ours}.{our_ffn}.conv_out.main.weight", take(f"{deconv}.weight").transpose(0, 1).flip(-1),
            f"{deconv}.weight")  # fmt: skip
        put(f"{ours}.{our_ffn}.conv_out.main.bias", take(f"{deconv}.bias"), f"{deconv}.bias")
    attn = f"{theirs}.attn"
    put(f"{ours}.attention.norm.gain", take(f"{theirs}.attn_norm.gamma"), f"{theirs}.attn_norm.gamma")
    qkv = take(f"{attn}.qkv.weight")
    if qkv.shape[0] != 3 * cfg.attention_dim:
        raise UnsupportedCheckpoint(f"{KEY_PREFIXES[0]}{attn}.qkv.weight: {qkv.shape[0]} rows, "
                                    f"expected {3 * cfg.attention_dim}")  # fmt: skip
    put(f"{ours}.attention.qkv.weight", qkv[_qkv_rows(cfg.attention_dim, cfg.heads)], f"{attn}.qkv.weight")
    put(f"{ours}.attention.qkv.bias", qkv.new_zeros(qkv.shape[0]), f"{attn}.qkv (no bias)")
    out = take(f"{attn}.aggregate_heads.0.weight")
    put(f"{ours}.attention.out.weight", out, f"{attn}.aggregate_heads.0.weight")
    put(f"{ours}.attention.out.bias", out.new_zeros(out.shape[0]), f"{attn}.aggregate_heads (no bias)")
    freqs = take(f"{attn}.rope.freqs")
    expected = rope_frequencies(cfg.attention_dim // cfg.heads)
    if freqs.shape != expected.shape or (not freqs.is_meta and not torch.allclose(freqs, expected, rtol=1e-6)):
        raise UnsupportedCheckpoint(f"{KEY_PREFIXES[0]}{attn}.rope.freqs: not the theta-10000 frequencies we run")

"""Complexity report per variant: parameters, GMAC/s at 1-4 prompts, breakdown, latency."""

from __future__ import annotations

from dataclasses import dataclass

from fastuss_fx.config import ModelConfig, list_variants, load_variant

PROMPT_COUNTS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Complexity:
    """What ``fastuss complexity`` prints for one variant (inference form, i.e. fused)."""

    name: str
    params: int
    gmacs_per_s: float  # at 2 prompts
    gmacs_per_s_by_prompts: dict[int, float]
    breakdown_gmacs_per_s: dict[str, float]  # at 2 prompts
    latency_ms: float
    causal: bool
    reference_seconds: float

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "gmacs_per_s": round(self.gmacs_per_s, 3),
            "gmacs_per_s_by_prompts": {str(k): round(v, 3) for k, v in self.gmacs_per_s_by_prompts.items()},
            "breakdown_gmacs_per_s": {k: round(v, 4) for k, v in self.breakdown_gmacs_per_s.items()},
            "latency_ms": round(self.latency_ms, 3),
            "causal": self.causal,
            "reference_seconds": self.reference_seconds,
        }


def count_params(config: ModelConfig) -> int:
    """Parameters of the fused (inference) model, counted without allocating weights."""
    import torch

    from fastuss_fx.model import TUSS

    with torch.device("meta"):
        model = TUSS(config).fuse()
    return sum(p.numel() for p in model.parameters())


def complexity(config: ModelConfig) -> Complexity:
    from fastuss_fx.model.macs import count_macs

    counts = {s: count_macs(config, s) for s in PROMPT_COUNTS}
    seconds = config.reference_seconds
    return Complexity(
        name=config.name,
        params=count_params(config),
        gmacs_per_s=counts[2].gmacs_per_second,
        gmacs_per_s_by_prompts={s: c.gmacs_per_second for s, c in counts.items()},
        breakdown_gmacs_per_s={k: v / 1e9 / seconds for k, v in counts[2].modules.items()},
        latency_ms=config.latency_ms,
        causal=config.causal,
        reference_seconds=seconds,
    )


def all_variants() -> list[Complexity]:
    return [complexity(load_variant(name)) for name in list_variants()]


def format_table(rows: list[Complexity], breakdown: bool = True) -> str:
    """Human-readable table (and per-module breakdown) of complexity rows."""
    head = (
        f"{'variant':<16}{'params':>10}"
        + "".join(f"{f'GMAC/s@{s}':>12}" for s in PROMPT_COUNTS)
        + f"{'latency ms':>12}{'causal':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<16}{r.params / 1e6:>9.2f}M"
            + "".join(f"{r.gmacs_per_s_by_prompts[s]:>12.2f}" for s in PROMPT_COUNTS)
            + f"{r.latency_ms:>12.2f}{'yes' if r.causal else 'no':>8}"
        )
    if breakdown:
        for r in rows:
            lines.append(f"\n{r.name}: GMAC/s per module at 2 prompts ({r.reference_seconds:g}-s clips)")
            for module, value in sorted(r.breakdown_gmacs_per_s.items(), key=lambda kv: -kv[1]):
                share = 100 * value / r.gmacs_per_s
                lines.append(f"  {module:<28}{value:>8.3f}  {share:5.1f} %")
    lines.append(
        "\nMACs of matrix products and convolutions per second of 48 kHz audio; "
        "latency = algorithmic (non-causal: whole clip)."
    )
    return "\n".join(lines)

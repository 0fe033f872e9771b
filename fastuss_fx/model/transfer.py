"""Start one variant from another variant's weights (warm start).

Tensors are copied by name. Conv kernels are laid out by time offset: a causal time conv of
kernel 2 looks at the previous and the current frame, a non-causal one of kernel 3 at the
previous, current and next, so each source tap goes to the target tap at the same offset and
the taps the source did not have start at zero; a train-time branch kernel that sits elsewhere
in the target is added into the main kernel instead. The target model so first computes what
the source did, wherever their layers line up. Everything else must match in shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor, nn

from fastuss_fx.model.reparam import RepConv1d, conv_padding
from fastuss_fx.model.tuss import TUSS


@dataclass
class TransferReport:
    """What ``transfer_weights`` did, by state-dict name."""

    copied: list[str] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)
    """Main conv kernels of another length or alignment, placed tap by tap at their time offsets."""
    folded: list[str] = field(default_factory=list)
    """Branch kernels that do not sit at the same offsets in the target: added into its main kernel
    (the same function), the branch itself starting at zero."""

    def __str__(self) -> str:
        return (
            f"{len(self.copied)} tensors copied, {len(self.placed)} conv kernels placed at their time offsets, "
            f"{len(self.folded)} branch kernels folded into them"
        )


def place_taps(source: Tensor, source_left: int, target_shape: torch.Size, target_left: int) -> Tensor:
    """A conv weight [C_out, C_in, k] re-laid onto another kernel by time offset.

    Tap ``j`` of a kernel with ``left`` past taps looks ``j - left`` frames ahead; a source tap
    whose offset the target kernel does not reach is an error (its information would be lost).
    """
    placed = source.new_zeros(target_shape)
    for tap in range(source.shape[-1]):
        index = tap - source_left + target_left
        if not 0 <= index < target_shape[-1]:
            raise ValueError(
                f"a tap {tap - source_left:+d} frames away does not fit a kernel of {target_shape[-1]} "
                f"with {target_left} past taps"
            )
        placed[..., index] = source[..., tap]
    return placed


def _past_taps(kernel: int, causal: bool) -> int:
    return conv_padding(kernel, causal)[0]


def _transfer_conv(
    name: str, source: RepConv1d, target: RepConv1d, state: dict[str, Tensor], report: TransferReport
) -> None:
    """Entries of ``state`` for one conv: its main kernel placed by offset, its branches copied or folded."""
    main_name, target_left = f"{name}.main.weight", _past_taps(target.kernel, target.causal)
    shape = target.main.weight.shape

    def place(tensor_name: str, weight: Tensor, source_left: int) -> Tensor:
        if weight.shape[:-1] != shape[:-1]:
            raise ValueError(
                f"{tensor_name} has shape {tuple(weight.shape)} in the source and {tuple(shape)} in the target"
            )
        try:
            return place_taps(weight, source_left, shape, target_left)
        except ValueError as error:
            raise ValueError(f"{tensor_name}: {error}") from None

    same_alignment = source.kernel == target.kernel and source.causal == target.causal
    main = place(main_name, source.main.weight, _past_taps(source.kernel, source.causal))
    (report.copied if same_alignment else report.placed).append(main_name)
    for index, (kernel, branch) in enumerate(zip(source.branch_kernels, source.branches, strict=True)):
        branch_name, weight = f"{name}.branches.{index}.weight", cast(nn.Conv1d, branch).weight
        target_kernel = target.branch_kernels[index]
        if kernel == target_kernel and _past_taps(kernel, source.causal) == _past_taps(kernel, target.causal):
            state[branch_name] = weight
            report.copied.append(branch_name)
        else:
            main = main + place(branch_name, weight, _past_taps(kernel, source.causal))
            state[branch_name] = weight.new_zeros(weight.shape[:-1] + (target_kernel,))
            report.folded.append(branch_name)
    state[main_name] = main


@torch.no_grad()
def transfer_weights(source: TUSS, target: TUSS) -> TransferReport:
    """Load ``source``'s weights into ``target`` (see the module docstring); ``target`` is changed in place.

    Raises:
        ValueError: a tensor is missing on either side, or differs in shape other than by conv
            kernel length (the message names it).
    """
    where = f"cannot start {target.config.name!r} from {source.config.name!r}"
    theirs, ours = source.state_dict(), target.state_dict()
    missing, unused = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if missing or unused:
        raise ValueError(f"{where}: tensors only in the target {missing[:4]}, only in the source {unused[:4]}")
    report, state = TransferReport(), dict[str, Tensor]()
    source_modules = dict(source.named_modules())
    for name, module in target.named_modules():
        if isinstance(module, RepConv1d):
            try:
                _transfer_conv(name, cast(RepConv1d, source_modules[name]), module, state, report)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
    for name, value in ours.items():
        if name in state:
            continue
        if theirs[name].shape != value.shape:
            raise ValueError(
                f"{where}: {name} has shape {tuple(theirs[name].shape)} in the source and {tuple(value.shape)} "
                "in the target"
            )
        state[name] = theirs[name]
        report.copied.append(name)
    target.load_state_dict({name: value.to(ours[name].dtype) for name, value in state.items()})
    return report

"""A hash of a torch module's state (names, dtypes, shapes and values of its parameters and buffers)."""

from __future__ import annotations

import hashlib

import torch


def state_sha256(module: torch.nn.Module) -> str:
    """Hex SHA-256 of ``module.state_dict()``: equal for equal weights, whatever the device."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

"""Which weights a render ran: the manifest keeps this, so new weights re-render finished inputs."""

from __future__ import annotations

from pathlib import Path

from fastuss_fx.pretrained import file_sha256, weights_path


def weights_hash(model: str | Path) -> str:
    """``file-sha256:<hex>`` of the weights file ``model`` loads, or ``state-sha256:<hex>`` of its state.

    ``model`` is a variant name or variant file as the processor resolved it. A variant with
    shipped weights is hashed by its file (cheap, no torch); one without (random init, or a
    ``.yaml`` file) is built as the workers build it and its state is hashed.
    """
    path = weights_path(str(model))
    if path is not None:
        return f"file-sha256:{file_sha256(path)}"
    from fastuss_fx.model.digest import state_sha256  # torch, only for models without a weights file
    from fastuss_fx.weights import load_model

    built, _ = load_model(model)
    return f"state-sha256:{state_sha256(built)}"

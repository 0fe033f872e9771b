"""Training: loss, the training loop, checkpoints and evaluation."""

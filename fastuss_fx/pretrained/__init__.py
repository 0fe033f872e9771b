"""Shipped trained weights (fp16 safetensors, one file per variant) and the model card."""

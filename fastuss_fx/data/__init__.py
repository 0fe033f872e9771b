"""Training data: manifests of audio clips, clip loading and dynamic mixing.

Imports torch only in ``mixer`` (the torch ``IterableDataset``); ``manifest`` is numpy only.
"""

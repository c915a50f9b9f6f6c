"""Decomposition algorithms: dense tensors in, format containers out."""

from tensornet.decompose.tt_svd import tt_svd

__all__ = ["tt_svd"]

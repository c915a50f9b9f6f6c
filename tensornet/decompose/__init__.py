"""Decomposition algorithms: dense tensors in, format containers out."""

from tensornet.decompose.tt_matrix import ttm_from_dense
from tensornet.decompose.tt_svd import tt_svd

__all__ = ["tt_svd", "ttm_from_dense"]

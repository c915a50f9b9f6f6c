"""tensornet: tensor-network algebra on NumPy, torch and any array-API library.

Formats (TT, TT-matrix; more arrive with TR, Tucker, CP and STP), decompositions
that honour an error bound, format-native algebra that never densifies, and
cached contraction.
"""

from tensornet._validation import ConvergenceWarning
from tensornet.contract import ContractionCost, contract, contract_cost, contraction_plan
from tensornet.decompose import tt_svd, ttm_from_dense
from tensornet.formats import (
    TRTensor,
    TTMatrix,
    TTTensor,
    tr_to_dense,
    tt_add,
    tt_hadamard,
    tt_inner,
    tt_mode_product,
    tt_norm,
    tt_orthogonalize,
    tt_round,
    tt_scale,
    tt_to_dense,
    tt_to_ttm,
    ttm_add,
    ttm_inner,
    ttm_matmul,
    ttm_matvec,
    ttm_norm,
    ttm_round,
    ttm_scale,
    ttm_to_dense,
    ttm_to_tt,
    ttm_transpose,
)
from tensornet.io import load, register_format, save
from tensornet.linalg import TruncatedSVD, truncated_svd
from tensornet.random import random_tt, random_tt_matrix

__version__ = "0.1.0"

__all__ = [
    "ContractionCost",
    "ConvergenceWarning",
    "TRTensor",
    "TTMatrix",
    "TTTensor",
    "TruncatedSVD",
    "__version__",
    "contract",
    "contract_cost",
    "contraction_plan",
    "load",
    "random_tt",
    "random_tt_matrix",
    "register_format",
    "save",
    "tr_to_dense",
    "truncated_svd",
    "tt_add",
    "tt_hadamard",
    "tt_inner",
    "tt_mode_product",
    "tt_norm",
    "tt_orthogonalize",
    "tt_round",
    "tt_scale",
    "tt_svd",
    "tt_to_dense",
    "tt_to_ttm",
    "ttm_add",
    "ttm_from_dense",
    "ttm_inner",
    "ttm_matmul",
    "ttm_matvec",
    "ttm_norm",
    "ttm_round",
    "ttm_scale",
    "ttm_to_dense",
    "ttm_to_tt",
    "ttm_transpose",
]

"""tensornet: tensor-network algebra on NumPy, torch and any array-API library.

Formats (TT, TT-matrix; more arrive with TR, Tucker, CP and STP), decompositions
that honour an error bound, format-native algebra that never densifies, and
cached contraction.
"""

from tensornet._validation import ConvergenceWarning
from tensornet.contract import ContractionCost, contract, contract_cost, contraction_plan
from tensornet.decompose import tt_svd
from tensornet.formats import (
    TTTensor,
    tt_add,
    tt_hadamard,
    tt_inner,
    tt_mode_product,
    tt_norm,
    tt_orthogonalize,
    tt_round,
    tt_scale,
    tt_to_dense,
)
from tensornet.linalg import TruncatedSVD, truncated_svd

__version__ = "0.1.0"

__all__ = [
    "ContractionCost",
    "ConvergenceWarning",
    "TTTensor",
    "TruncatedSVD",
    "__version__",
    "contract",
    "contract_cost",
    "contraction_plan",
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
]

"""Decomposition algorithms: dense tensors in, format containers out."""

from tensornet.decompose.cp_als import (
    cp_als,
)
from tensornet.decompose.stp_fit import (
    str_fit,
    stt_fit,
    sttucker_fit,
)
from tensornet.decompose.tr_als import (
    tr_als,
)
from tensornet.decompose.tr_search import (
    TRCandidate,
    tr_search,
    tr_search_candidates,
)
from tensornet.decompose.tr_svd import (
    tr_svd,
)
from tensornet.decompose.tt_matrix import (
    ttm_from_dense,
)
from tensornet.decompose.tt_svd import (
    tt_svd,
)
from tensornet.decompose.tucker import (
    hooi,
    hosvd,
    st_hosvd,
)

__all__ = [
    "TRCandidate",
    "cp_als",
    "hooi",
    "hosvd",
    "st_hosvd",
    "str_fit",
    "stt_fit",
    "sttucker_fit",
    "tr_als",
    "tr_search",
    "tr_search_candidates",
    "tr_svd",
    "tt_svd",
    "ttm_from_dense",
]

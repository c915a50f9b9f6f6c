"""Immutable tensor-format containers and their format-native algebra."""

from tensornet.formats.tt import (
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

__all__ = [
    "TTTensor",
    "tt_add",
    "tt_hadamard",
    "tt_inner",
    "tt_mode_product",
    "tt_norm",
    "tt_orthogonalize",
    "tt_round",
    "tt_scale",
    "tt_to_dense",
]

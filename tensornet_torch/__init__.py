"""tensornet_torch: the PyTorch adapter of tensornet.

Factorized convolution and linear layers built on tensornet's decompositions
(Tucker-2, CP, TT, TR with the RSDTR pipeline, STP variants), conversion of
pretrained layers, whole-model compression and ADMM rank-constrained training, and
helpers that keep data-parallel replicas identical (:mod:`tensornet_torch.distributed`).

The core algorithms accept torch tensors directly (CPU or CUDA), e.g.
``tensornet.tt_svd(weight.detach())`` returns torch cores on the weight's device.
"""

from __future__ import annotations

import torch

import tensornet
from tensornet_torch.admm import ADMM
from tensornet_torch.compress import METHODS, CompressionReport, LayerReport, compress
from tensornet_torch.distributed import (
    broadcast_module,
    check_replicas,
    check_structure,
    check_world_size,
)
from tensornet_torch.layers import (
    CPConv2d,
    FactorizedConv2d,
    STRConv2d,
    STTConv2d,
    STTuckerConv2d,
    TRConv2d,
    TTConv2d,
    TTLinear,
    TuckerConv2d,
)

__all__ = [
    "ADMM",
    "METHODS",
    "CPConv2d",
    "CompressionReport",
    "FactorizedConv2d",
    "LayerReport",
    "STRConv2d",
    "STTConv2d",
    "STTuckerConv2d",
    "TRConv2d",
    "TTConv2d",
    "TTLinear",
    "TuckerConv2d",
    "broadcast_module",
    "check_replicas",
    "check_structure",
    "check_world_size",
    "compress",
]
__version__ = tensornet.__version__
TORCH_VERSION = torch.__version__

"""tensornet_torch: the PyTorch adapter of tensornet.

Factorized convolution and linear layers built on tensornet's decompositions
(Tucker-2, CP, TT, TR with the RSDTR pipeline, STP variants), conversion of
pretrained layers, whole-model compression and ADMM rank-constrained training.

The core algorithms accept torch tensors directly (CPU or CUDA), e.g.
``tensornet.tt_svd(weight.detach())`` returns torch cores on the weight's device.
"""

from __future__ import annotations

import torch

import tensornet
from tensornet_torch.compress import METHODS, CompressionReport, LayerReport, compress
from tensornet_torch.layers import FactorizedConv2d, STRConv2d, TRConv2d, TuckerConv2d

__all__ = [
    "METHODS",
    "CompressionReport",
    "FactorizedConv2d",
    "LayerReport",
    "STRConv2d",
    "TRConv2d",
    "TuckerConv2d",
    "compress",
]
__version__ = tensornet.__version__
TORCH_VERSION = torch.__version__

"""tensornet_torch: the PyTorch adapter of tensornet.

Factorized convolution and linear layers built on tensornet's decompositions
(Tucker-2, CP, TT, TR with the RSDTR pipeline, STP variants), conversion of
pretrained layers, whole-model compression and ADMM rank-constrained training.

The core algorithms already accept torch tensors directly (CPU or CUDA), e.g.
``tensornet.tt_svd(weight.detach())`` returns torch cores on the weight's device.
The layer classes arrive with the adapter issue; until then this package only
checks that torch is importable.
"""

from __future__ import annotations

import torch

import tensornet

__all__: list[str] = []
__version__ = tensornet.__version__
TORCH_VERSION = torch.__version__

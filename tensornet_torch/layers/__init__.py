"""Factorized layers: drop-in replacements of ``nn.Conv2d`` / ``nn.Linear``."""

from tensornet_torch.layers._base import FORWARD_MODES, FactorizedConv2d, init_product_
from tensornet_torch.layers.tr_conv import STRConv2d, TRConv2d
from tensornet_torch.layers.tucker_conv import TuckerConv2d

__all__ = [
    "FORWARD_MODES",
    "FactorizedConv2d",
    "STRConv2d",
    "TRConv2d",
    "TuckerConv2d",
    "init_product_",
]

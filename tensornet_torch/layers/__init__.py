"""Factorized layers: drop-in replacements of ``nn.Conv2d`` / ``nn.Linear``."""

from tensornet_torch.layers._base import (
    FORWARD_MODES,
    FactorizedConv2d,
    balance_,
    init_product_,
    one_thread_on_cpu,
)
from tensornet_torch.layers.cp_conv import CPConv2d
from tensornet_torch.layers.stp_conv import STTConv2d, STTuckerConv2d
from tensornet_torch.layers.tr_conv import STRConv2d, TRConv2d
from tensornet_torch.layers.tt_conv import TTConv2d
from tensornet_torch.layers.tt_linear import TTLinear
from tensornet_torch.layers.tucker_conv import TuckerConv2d

__all__ = [
    "FORWARD_MODES",
    "CPConv2d",
    "FactorizedConv2d",
    "STRConv2d",
    "STTConv2d",
    "STTuckerConv2d",
    "TRConv2d",
    "TTConv2d",
    "TTLinear",
    "TuckerConv2d",
    "balance_",
    "init_product_",
    "one_thread_on_cpu",
]

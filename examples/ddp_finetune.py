"""Compress a ResNet and fine-tune it with DistributedDataParallel, launched by torchrun.

The job is :mod:`tensornet_torch.ddp_demo` (also ``tensornet demo --ddp 2``); this script
runs it with the same options::

    torchrun --standalone --nproc_per_node 2 examples/ddp_finetune.py --backend gloo
    torchrun --standalone --nproc_per_node 2 examples/ddp_finetune.py --backend nccl
    torchrun --standalone --nproc_per_node 2 examples/ddp_finetune.py --admm --world-size 2
"""

from tensornet_torch.ddp_demo import main

if __name__ == "__main__":
    main()

"""torch.distributed: torch.optim AdamW / Adam(weight_decay) under ZeRO, FSDP2 and DDP on gloo worker
processes (cases.py, driver.py, worker.py, wrappers.py, launch.py; registered deviations in deviations.toml)."""
from .driver import TorchDistributedAdapter

ADAPTER = TorchDistributedAdapter()

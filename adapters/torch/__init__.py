"""torch.optim: cases (cases.py), driver (driver.py), registered deviations (deviations.toml), bench stepper (bench.py)."""
from .driver import TorchAdapter

ADAPTER = TorchAdapter()

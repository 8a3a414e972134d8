"""MXNet 1.9.1: cases (cases.py), drivers (driver.py, update ops in ops.py), registered deviations
(deviations.toml), bench stepper (bench.py)."""
from .driver import MXNetAdapter

ADAPTER = MXNetAdapter()

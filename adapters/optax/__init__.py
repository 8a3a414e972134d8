"""optax (JAX): cases (cases.py), driver (driver.py) building the GradientTransformation (transform.py)
on flax-style pytrees (trees.py), registered deviations (deviations.toml), bench stepper (bench.py)."""
from .driver import OptaxAdapter

ADAPTER = OptaxAdapter()

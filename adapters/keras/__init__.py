"""Keras 3 (`keras.optimizers`) on the TensorFlow backend (lane "tensorflow") and on the JAX backend
(lane "keras-jax"): cases (cases.py), rigs (rig.py), drivers (driver.py), adapters (adapter.py),
registered deviations of both lanes (deviations.toml), bench stepper for the TF backend (bench.py)."""
from .adapter import JaxKerasAdapter, TensorFlowKerasAdapter

TF_ADAPTER = TensorFlowKerasAdapter()
JAX_ADAPTER = JaxKerasAdapter()

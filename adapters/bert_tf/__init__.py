"""The TensorFlow BERT optimizers (tf-models-official AdamWeightDecay/LAMB, google-research/bert
AdamWeightDecayOptimizer): cases (cases.py), drivers (driver.py), registered deviations
(deviations.toml). No bench stepper."""
from .driver import BertTFAdapter

ADAPTER = BertTFAdapter()

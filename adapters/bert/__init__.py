"""The torch BERT ports (pytorch-pretrained-bert BertAdam, transformers AdamW): cases (cases.py),
driver (driver.py, on the torch driver). No registered deviations, no bench stepper."""
from .driver import BertTorchAdapter

ADAPTER = BertTorchAdapter()

"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "91d96e1d362b1c393e5d7a5549c8b777f7000b4261f6c801251311737edfa02e"

"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "4eff9f30badc5d35eb44b435233bf6c1516d351047c73aefcc728068dab9eae5"

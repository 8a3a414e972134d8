"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "1c6305e75e7569ddc36597e9fd77f8cd33a387fcbccdb1876fd2dea1b74a0edc"

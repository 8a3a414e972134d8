"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "7ba2ed7e5a43b99bd6d60b26dd8e98329b4934fa3a3c8be6c8de7fbeda6c16a3"

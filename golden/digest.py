"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "3edbb0474bfa7393c1e56de758a5b229ac8d535552398472810f24f8d7c4e69c"

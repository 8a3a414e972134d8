"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "b9bcabbc2e52328b47426967773720fb89f579a21dece87ace16f35e3cc2ce7d"

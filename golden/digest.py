"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "8b9897cd3c2cbaca2cea71bcf710dada09511709f514fac8d3ee97eb143cb75f"

"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "aa3dcf406e8d4d955dd1c51053f7ea8b18f7d8e151ad8f90761f78c18b32f58d"

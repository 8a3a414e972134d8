"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "eb6ae97599ce35103280ae24317a45bd9da393ecb8a186632e8d862a1de7af31"

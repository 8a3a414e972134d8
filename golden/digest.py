"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "6bdb29adb57060b85da252e9198d30046f7b54ec0375ab75dca009dbc5d7f5c6"

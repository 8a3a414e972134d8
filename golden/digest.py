"""SHA-256 of golden/corpus/manifest.json, written by `optconform golden --regenerate`; every read of the
packaged corpus checks the manifest against it (golden/integrity.py)."""
MANIFEST_SHA256 = "ac62a9f47bfff37549a6d7bf0bb77434f2e2d7005d0fce6e4c33da12e3cf3045"

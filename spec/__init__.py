"""The optconform spec as package data: knobs.toml and rules.toml (machine-readable), *.md (maths)."""

"""optconform: a cross-framework conformance suite and reference spec for optimizer update rules.

Importing optconform imports no framework; an adapter imports its framework when it is used.
"""
__version__ = "0.1.0"

"""optconform: a cross-framework conformance suite and reference spec for optimizer update rules.

Importing optconform imports no framework; an adapter imports its framework when it is used.
"""
__version__ = "0.1.0"


def check(factory, rule: str = "adamw", framework: str = "torch", **kwargs):
    """Check a user's optimizer factory against a rule (see optconform.checking.check); truthy report
    when it conforms, readable str()."""
    from .checking import check as _check
    return _check(factory, rule, framework, **kwargs)

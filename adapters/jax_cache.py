"""JAX's persistent compilation cache for the adapters that compile with XLA through JAX (optax, Keras
on JAX): the executables compiled in one run (jit steps and the per-primitive compilations of eager
dispatch) are read back in the next one instead of being compiled again.

The cache key is the lowered program, its compile options, the backend and the jax/jaxlib versions
(jax/_src/cache_key.py at jax-v0.10.2), and a hit loads the executable XLA wrote for exactly that key:
the same machine code, so the same numbers (README "Speed": `tools/same-results` of a run with a cold
and a warm cache). Every compilation is cached (no minimum compile time or entry size).

Where: OPTCONFORM_JAX_CACHE (a directory; set but empty: no persistent cache), else
$XDG_CACHE_HOME/optconform/jax (~/.cache/optconform/jax). A directory the user configured in JAX itself
(jax_compilation_cache_dir, JAX_COMPILATION_CACHE_DIR) is left as it is.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "OPTCONFORM_JAX_CACHE"


def directory() -> str:
    """The cache directory optconform asks for ('' when OPTCONFORM_JAX_CACHE is set but empty)."""
    if ENV in os.environ:
        return os.environ[ENV]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "optconform" / "jax")


def enable(jax) -> str:
    """Point JAX's persistent compilation cache at `directory()` unless the user chose one; the
    directory in use ('' : none)."""
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    path = directory()
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path

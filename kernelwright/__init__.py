"""Shared core of kernelwright: settings, errors, domain types and logging.

The six product packages (`agent`, `rag`, `knowledge`, `sandbox`, `api`, `prompts`) all depend on this
one; it depends on none of them.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

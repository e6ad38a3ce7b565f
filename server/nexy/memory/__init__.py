"""Per-device memory: facts the user shared or asked to keep (never secrets), and recent talk.

``MemoryService`` (durable, in :mod:`nexy.memory.service`) is imported from its module: the
storage layer imports :mod:`nexy.memory.facts`, so this package must not import storage back.
"""

from nexy.memory.analyzer import LLMAnalyzer, RuleAnalyzer
from nexy.memory.hooks import FORGET_ALL, InProcessMemory, MemoryHooks, looks_secret

__all__ = [
    "FORGET_ALL",
    "InProcessMemory",
    "LLMAnalyzer",
    "MemoryHooks",
    "RuleAnalyzer",
    "looks_secret",
]

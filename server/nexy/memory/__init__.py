"""Per-device memory: the facts a user asked the assistant to keep (never secrets)."""

from nexy.memory.hooks import FORGET_ALL, InProcessMemory, MemoryHooks, looks_secret

__all__ = ["FORGET_ALL", "InProcessMemory", "MemoryHooks", "looks_secret"]

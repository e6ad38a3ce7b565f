"""The component registry (the guide's module coordinator and universal module interface)."""

from __future__ import annotations

import pytest

from nexy.components import READY, ComponentStatus, Registry, StartupError, State


class Part:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail
        self.state = ComponentStatus(State.DOWN, "new")

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.fail:
            raise RuntimeError("no model file")
        self.state = READY

    def status(self) -> ComponentStatus:
        return self.state

    async def close(self) -> None:
        self.log.append(f"close {self.name}")


async def test_registration_lookup_and_reverse_close():
    log: list[str] = []
    registry = Registry()
    llm, tts = Part(log, "llm"), Part(log, "tts")
    registry.register("llm", llm)
    registry.register("tts", tts)
    assert registry.get("tts") is tts and registry.capabilities() == ["llm", "tts"]
    with pytest.raises(LookupError):
        registry.get("storage")
    with pytest.raises(ValueError):
        registry.register("llm", llm)
    assert registry.status()["llm"].state is State.DOWN
    await registry.start_all()
    assert {name: s.state for name, s in registry.status().items()} == {
        "llm": State.READY,
        "tts": State.READY,
    }
    await registry.close_all()
    assert log == ["start llm", "start tts", "close tts", "close llm"]
    assert registry.status()["llm"].reason == "closed"


async def test_optional_failure_degrades_required_failure_stops():
    log: list[str] = []
    registry = Registry()
    registry.register("llm", Part(log, "llm"))
    registry.register("updates", Part(log, "updates", fail=True), required=False)
    await registry.start_all()
    status = registry.status()
    assert status["updates"].state is State.DOWN and "no model file" in status["updates"].reason
    await registry.close_all()

    log.clear()
    strict = Registry()
    strict.register("llm", Part(log, "llm"))
    strict.register("tts", Part(log, "tts", fail=True))
    with pytest.raises(StartupError, match="tts failed to start"):
        await strict.start_all()
    assert log == ["start llm", "start tts", "close llm"]


async def test_plain_objects_without_lifecycle_count_as_ready():
    registry = Registry()
    registry.register("llm", object())
    await registry.start_all()
    assert registry.status()["llm"].state is State.READY

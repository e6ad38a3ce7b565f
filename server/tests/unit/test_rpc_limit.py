"""The cap on calls in flight: derived from the turn limit unless set, and never below it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nexy.config import LimitsSettings
from nexy.transport.grpc.server import RPC_HEADROOM, rpc_limit


def test_automatic_cap_is_the_turn_limit_plus_headroom() -> None:
    assert rpc_limit(LimitsSettings(max_concurrent_turns=50)) == 50 + RPC_HEADROOM
    assert rpc_limit(LimitsSettings()) == LimitsSettings().max_concurrent_turns + RPC_HEADROOM


def test_explicit_cap_wins() -> None:
    assert rpc_limit(LimitsSettings(max_concurrent_turns=50, max_concurrent_rpcs=51)) == 51


@pytest.mark.parametrize("cap", [1, 50])
def test_cap_at_or_below_the_turn_limit_is_refused(cap: int) -> None:
    with pytest.raises(ValidationError, match="above max_concurrent_turns"):
        LimitsSettings(max_concurrent_turns=50, max_concurrent_rpcs=cap)

"""The admission limits' parts (eucgate.api.limits) and their settings."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from eucgate.api.limits import CountedPool, StreamCounts
from eucgate.config import load_settings
from eucgate.errors import ConfigError


def test_a_counted_pool_holds_work_until_it_ends() -> None:
    pool = CountedPool(1, "test")
    release = threading.Event()
    try:
        first = pool.submit(release.wait, 10)
        second = pool.submit(lambda: None)  # queued behind the first
        assert pool.held == 2
        release.set()
        first.result(timeout=10)
        second.result(timeout=10)
        # done callbacks run right after each piece of work
        for _ in range(100):
            if pool.held == 0:
                break
            threading.Event().wait(0.01)
        assert pool.held == 0
    finally:
        release.set()
        pool.shutdown()


def test_a_counted_pool_counts_work_that_raises() -> None:
    pool = CountedPool(1, "test")

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        pool.submit(fail).result(timeout=10)
    pool.shutdown(wait=True)
    assert pool.held == 0


def test_stream_counts_cap_per_caller_then_per_method() -> None:
    counts = StreamCounts(per_method=3, per_caller=2)
    assert counts.acquire("/m", "a") == ""
    assert counts.acquire("/m", "a") == ""
    assert counts.acquire("/m", "a") == "caller"
    assert counts.acquire("/m", "b") == ""
    assert counts.acquire("/m", "c") == "method"
    assert counts.acquire("/other", "c") == ""  # another method has room
    assert counts.open(method="/m") == 3
    assert counts.open(caller="a") == 2
    counts.release("/m", "a")
    assert counts.acquire("/m", "c") == ""
    for method, caller in (("/m", "a"), ("/m", "b"), ("/m", "c"), ("/other", "c")):
        counts.release(method, caller)
    assert counts.open(method="/m") == 0
    assert counts.open(caller="c") == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_workers": 32, "max_concurrent_calls": 16}, "max_concurrent_calls must be at least"),
        ({"stream_workers": 4, "max_streams_per_method": 8}, "max_streams_per_method must be at"),
        ({"stream_workers": 2, "max_streams_per_caller": 3, "max_streams_per_method": 2}, "caller"),
        ({"readiness_probe_timeout_seconds": 0}, "readiness_probe_timeout_seconds"),
        ({"readiness_failure_window_seconds": -1}, "readiness_failure_window_seconds"),
    ],
)
def test_limit_settings_are_checked(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(insecure=True, data_dir=tmp_path, **overrides)


def test_limit_settings_defaults_hold_together(tmp_path: Path) -> None:
    settings = load_settings(insecure=True, data_dir=tmp_path)
    assert settings.max_concurrent_calls >= settings.max_workers
    assert settings.max_streams_per_caller <= settings.max_streams_per_method
    assert settings.max_streams_per_method <= settings.stream_workers

"""glibc's settings for LanceDB's memory: two arenas and a fixed mmap threshold, unless the user set them."""

from __future__ import annotations

import pytest

import engine.memory as memory


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    return fake


def test_the_arenas_are_capped_and_the_mmap_threshold_fixed(libc: FakeLibc) -> None:
    memory.limit_malloc_arenas()
    assert libc.calls == [(memory._M_ARENA_MAX, 2), (memory._M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD)]


def test_a_users_own_settings_win_each_on_its_own(libc: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    memory.limit_malloc_arenas()
    assert libc.calls == [(memory._M_ARENA_MAX, 2)]
    libc.calls.clear()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    memory.limit_malloc_arenas()
    assert libc.calls == [(memory._M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD)]


def test_a_user_arena_setting_still_lets_memory_be_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: MALLOC_ARENA_MAX in the environment hid glibc altogether, and trim_malloc did nothing.
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setattr(memory, "_libc_checked", False)
    monkeypatch.setattr(memory, "_libc", None)
    import sys

    assert (memory._glibc() is not None) == sys.platform.startswith("linux")

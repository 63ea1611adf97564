"""engine.memory.release_file_pages: a read-only file mapping leaves the RSS and reads back the same;
a mapping with pages of the process's own (copy-on-write) is never touched. Real mappings, real kernel."""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.memory import release_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's madvise and /proc")

SIZE = 8 << 20


def _mapping_rss_kb(address: int) -> int:
    """The Rss of the mapping of /proc/self/smaps that holds ``address``."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start, end = (int(part, 16) for part in head[0].split("-"))
            inside = start <= address < end
        elif inside and line.startswith("Rss:"):
            return int(head[1])
    raise AssertionError("mapping not found")


def _buffer_address(view: mmap.mmap) -> int:
    return int(np.frombuffer(view, dtype=np.uint8).ctypes.data)  # a read-only mmap exports no writable buffer


def test_a_read_only_mapping_leaves_the_rss_and_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        assert view[:] == data  # every page touched
        address = _buffer_address(view)
        assert _mapping_rss_kb(address) >= (SIZE >> 10) * 0.9
        released = release_file_pages(lambda p: p == str(path))
        assert released >= SIZE
        assert _mapping_rss_kb(address) < (SIZE >> 10) * 0.1
        assert view[:] == data  # mapped back from the page cache, unchanged


def test_a_mapping_with_pages_of_its_own_is_left_alone(tmp_path: Path) -> None:
    """A private mapping written, then made read-only (what the dynamic linker does to a library's
    relocated data): dropping its pages would put the file's bytes back over the written ones."""
    path = tmp_path / "relocated.bin"
    path.write_bytes(b"\0" * SIZE)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    with path.open("rb+") as fh:
        address = libc.mmap(None, SIZE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE, fh.fileno(), 0)
        assert address not in (None, ctypes.c_void_p(-1).value)
    try:
        ctypes.memset(address, 0x5A, 4096)  # a copy-on-write page of this process's own
        assert libc.mprotect(address, SIZE, mmap.PROT_READ) == 0
        release_file_pages(lambda p: p == str(path))
        assert ctypes.string_at(address, 16) == b"\x5a" * 16
    finally:
        libc.munmap(address, SIZE)

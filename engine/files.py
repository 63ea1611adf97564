"""Which files of a workspace get indexed, and reading them safely.

Honours every ``.gitignore`` (nested ones apply below their directory, as git does), a
``.semcodeignore`` with the same syntax, the built-in excludes (vendored dirs, generated files,
secrets) and the user's include/exclude patterns. Never follows symlinked directories.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import DEFAULT_EXCLUDES, EngineConfig
from .errors import SourceFileError

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".semcodeignore")

# Text formats worth indexing besides the languages the chunker parses.
TEXT_EXTENSIONS = frozenset(
    {
        ".md",
        ".rst",
        ".txt",
        ".toml",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".sql",
        ".graphql",
        ".proto",
        ".html",
        ".css",
        ".scss",
        ".vue",
        ".svelte",
        ".xml",
        ".gradle",
        ".cmake",
        ".tf",
        ".nix",
    }
)
TEXT_FILENAMES = frozenset({"Makefile", "Dockerfile", "CMakeLists.txt", "Rakefile", "Gemfile", "Justfile"})


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # workspace-relative, POSIX
    abspath: Path
    size: int
    mtime_ns: int


def _spec(lines: list[str]):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


class FileFilter:
    """Decides whether a workspace-relative path is indexed."""

    def __init__(self, root: Path, config: EngineConfig) -> None:
        self.root = root
        self.config = config
        self._excluded = _spec(list(DEFAULT_EXCLUDES) + list(config.exclude))
        self._included = _spec(list(config.include)) if config.include else None
        self._ignore_specs: dict[str, object] = {}  # dir (relative, "" = root) -> spec or None

    def _dir_spec(self, rel_dir: str):
        if rel_dir not in self._ignore_specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                try:
                    lines += (self.root / rel_dir / name).read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    continue
            self._ignore_specs[rel_dir] = _spec(lines) if lines else None
        return self._ignore_specs[rel_dir]

    def ignored(self, rel_path: str, *, is_dir: bool = False) -> bool:
        probe = rel_path + "/" if is_dir else rel_path
        if self._excluded.match_file(probe):
            return True
        # Each ignore file's patterns are relative to its own directory.
        parts = rel_path.split("/")
        for depth in range(len(parts)):
            rel_dir = "/".join(parts[:depth])
            spec = self._dir_spec(rel_dir)
            if spec is not None:
                sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
                if spec.match_file(sub):
                    return True
        return False

    def wanted(self, rel_path: str) -> bool:
        """A file (not directory) the user wants indexed, judged by name alone."""
        if self.ignored(rel_path):
            return False
        if self._included is not None and not self._included.match_file(rel_path):
            return False
        return is_indexable_name(rel_path)


def is_indexable_name(rel_path: str) -> bool:
    from .chunking import language_for_path

    name = rel_path.rsplit("/", 1)[-1]
    if language_for_path(rel_path) is not None or name in TEXT_FILENAMES:
        return True
    return os.path.splitext(name)[1].lower() in TEXT_EXTENSIONS


def walk(root: Path, config: EngineConfig, skipped: list[tuple[str, str]] | None = None) -> Iterator[SourceFile]:
    """Yield the files to index under ``root``, sorted within each directory for stable order."""
    file_filter = FileFilter(root, config)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(root / rel_dir) as entries:
                entries_sorted = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot list %s: %s", rel_dir or ".", exc.strerror or exc)
            if skipped is not None:
                skipped.append((rel_dir or ".", f"cannot list directory: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries_sorted:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not file_filter.ignored(rel, is_dir=True):
                        subdirs.append(rel)
                    continue
                if not entry.is_file(follow_symlinks=True) or not file_filter.wanted(rel):
                    continue
                stat = entry.stat(follow_symlinks=True)
            except OSError as exc:
                if skipped is not None:
                    skipped.append((rel, f"cannot stat: {exc.strerror or exc}"))
                continue
            if stat.st_size > config.max_file_size:
                if skipped is not None:
                    skipped.append((rel, f"larger than max_file_size ({stat.st_size} > {config.max_file_size} bytes)"))
                continue
            yield SourceFile(rel, root / rel, stat.st_size, stat.st_mtime_ns)
        stack.extend(reversed(subdirs))


def source_file(root: Path, rel_path: str, config: EngineConfig) -> SourceFile | None:
    """The SourceFile for one path if it is indexable now, else None (deleted, ignored, too large)."""
    if not FileFilter(root, config).wanted(rel_path):
        return None
    try:
        stat = (root / rel_path).stat()
    except OSError:
        return None
    if not (root / rel_path).is_file() or stat.st_size > config.max_file_size:
        return None
    return SourceFile(rel_path, root / rel_path, stat.st_size, stat.st_mtime_ns)


def read_source(file: SourceFile, max_size: int) -> str:
    """Read a file as UTF-8 text; binary, oversized or undecodable files raise SourceFileError."""
    try:
        with open(file.abspath, "rb") as handle:
            data = handle.read(max_size + 1)
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise SourceFileError(f"{file.path}: permission denied") from exc
    except OSError as exc:
        raise SourceFileError(f"{file.path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > max_size:
        raise SourceFileError(f"{file.path}: larger than max_file_size ({max_size} bytes)")
    if b"\0" in data[:8192]:
        raise SourceFileError(f"{file.path}: binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFileError(f"{file.path}: not valid UTF-8 (byte {exc.start})") from exc
    return text.removeprefix("\ufeff")

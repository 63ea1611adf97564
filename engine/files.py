"""Which files of a workspace get indexed, and reading them safely.

Honours every ``.gitignore`` (nested ones apply below their directory, as git does), a
``.semcodeignore`` with the same syntax, the built-in excludes (vendored dirs, generated files,
secrets) and the user's include/exclude patterns.

Nothing outside the workspace is ever read: symlinked directories are not descended, a symlinked file
is read only when its real path is inside the workspace's real root, and every open is of a regular
file (a FIFO, socket or device is never opened for reading: ``O_NONBLOCK`` plus an ``fstat`` of the
opened descriptor close the race between the check and the open). Files whose names are not valid
UTF-8, virtualenvs (any folder holding ``pyvenv.cfg``) and files holding an obvious secret (a private
key block, an access token) are skipped with one log line that names the reason, never the secret.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import stat as stat_mode
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import DEFAULT_EXCLUDES, EngineConfig
from .errors import SourceFileError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".semcodeignore")
VENV_MARKER = "pyvenv.cfg"
IGNORE_FILE_MAX_SIZE = 1_000_000

# Secrets recognised by content. Each alternative is anchored on a literal prefix, so scanning a file
# costs about one pass of the regex engine's literal search.
_SECRETS = re.compile(
    r"(?P<pem>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"
    r"|(?P<npm>npmAuthToken[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._~+/-]{8,})"
    r"|(?P<aws>\bA(?:KIA|SIA)[0-9A-Z]{16}\b)"
    r"|(?P<github>\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,})"
    r"|(?P<slack>\bxox[baprs]-[A-Za-z0-9-]{10,})"
)
# A literal every alternative of _SECRETS contains: ``in`` on a text is ~100x faster than the regex's
# scan (which tries five alternatives at every position), and most files hold none of them.
_SECRET_LITERALS = (
    "PRIVATE KEY",
    "npmAuthToken",
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
)
_SECRET_NAMES = {
    "pem": "a private key block",
    "npm": "an npm auth token",
    "aws": "an AWS access key id",
    "github": "a GitHub token",
    "slack": "a Slack token",
}
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)

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
    real_path: str  # the real path (symlinks resolved), inside the workspace's real root
    size: int
    mtime_ns: int
    root: Path | None = None  # the workspace's real root: read_source re-checks containment against it

    @property
    def abspath(self) -> Path:
        """``real_path`` as a Path, made when a file is read: a walk's 13.6K Paths cost ~60 ms it need not."""
        return Path(self.real_path)


def _spec(lines: list[str]) -> _OneRegex | GitIgnoreSpec:
    return _compiled_spec(tuple(lines))


@functools.lru_cache(maxsize=256)
def _compiled_spec(lines: tuple[str, ...]) -> _OneRegex | GitIgnoreSpec:
    """Compiled once per distinct pattern list: a save builds a FileFilter for one path, and compiling
    the ~60 default excludes cost it ~10 ms every time. Specs are never mutated after compiling."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return _OneRegex.of(spec) or spec


# pathspec's regex for a gitignore pattern without a slash ("build/", "*.min.js"): it may match at any depth.
_ANYWHERE, _FILE_OR_DIR, _DIR_ONLY = "^(?:.+/)?", "(?:(?P<ps_d>/)|$)", "(?P<ps_d>/)"


class _OneRegex:
    """A gitignore spec without negations, matched by one combined regex instead of pattern by pattern.

    Without a ``!pattern`` a path is ignored exactly when some pattern matches it, so the patterns'
    own regexes can be joined into one alternation; those that match at any depth share one prefix
    (``^(?:.+/)?(?:a|b|...)``), which the regex engine tries once per path component. The walk asks
    this for every file and directory: 6x faster than pathspec's loop over the ~60 default patterns
    (1.2 s of a 13,600-file workspace's 2.4 s walk). Anything else (negations, flags, a pathspec whose
    regexes look different) keeps pathspec's own matching.
    """

    def __init__(self, regex: re.Pattern[str]) -> None:
        from pathspec.util import normalize_file

        self._regex = regex
        self._normalize = normalize_file

    @classmethod
    def of(cls, spec: GitIgnoreSpec) -> _OneRegex | None:
        anywhere: list[str] = []
        anywhere_dirs: list[str] = []
        others: list[str] = []
        for pattern in spec.patterns:
            regex = getattr(pattern, "regex", None)
            if pattern.include is None:
                continue  # a comment or blank line
            if pattern.include is False or regex is None or regex.flags & ~re.UNICODE:
                return None
            text = regex.pattern
            if text.startswith(_ANYWHERE) and text.endswith(_FILE_OR_DIR):
                anywhere.append(text[len(_ANYWHERE) : -len(_FILE_OR_DIR)])
            elif text.startswith(_ANYWHERE) and text.endswith(_DIR_ONLY):
                anywhere_dirs.append(text[len(_ANYWHERE) : -len(_DIR_ONLY)])
            else:
                others.append(text)
        alternatives = [_ANYWHERE + "(?:" + "|".join(anywhere) + ")(?:/|$)"] if anywhere else []
        if anywhere_dirs:
            alternatives.append(_ANYWHERE + "(?:" + "|".join(anywhere_dirs) + ")/")
        alternatives += others
        # Group names repeat across patterns (and mean nothing without negations): drop them.
        joined = re.sub(r"\(\?P<\w+>", "(?:", "|".join(f"(?:{a})" for a in alternatives)) or "(?!)"
        try:
            return cls(re.compile(joined))
        except re.error:
            return None

    def match_file(self, path: str) -> bool:
        return self._regex.match(self._normalize(path)) is not None


class FileFilter:
    """Decides whether a workspace-relative path is indexed."""

    def __init__(self, root: Path, config: EngineConfig) -> None:
        self.root = root
        self.config = config
        self._excluded = _spec(list(DEFAULT_EXCLUDES) + list(config.exclude))
        self._included = _spec(list(config.include)) if config.include else None
        self._ignore_specs: dict[
            str, _OneRegex | GitIgnoreSpec | None
        ] = {}  # dir (relative, "" = root) -> spec or None
        # dir -> the ignore specs that apply inside it (its own and its ancestors'), each with the length of
        # the prefix its patterns are relative to: the walk judges a directory's entries against one list.
        self._chains: dict[str, list[tuple[int, _OneRegex | GitIgnoreSpec]]] = {}

    def _dir_spec(self, rel_dir: str, names: Collection[str] | None = None) -> _OneRegex | GitIgnoreSpec | None:
        """``names``: the directory's entries, when the caller listed it (no lstat for a missing ignore file)."""
        if rel_dir not in self._ignore_specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                if names is not None and name not in names:
                    continue
                path = self.root / rel_dir / name
                if not os.path.lexists(path):  # one lstat; resolving a missing path costs one per component
                    continue
                # An ignore file may be a FIFO or a symlink out of the workspace too.
                data = _read_regular(path, IGNORE_FILE_MAX_SIZE, root=self.root)
                if data is not None:
                    lines += data.decode("utf-8", errors="replace").splitlines()
            self._ignore_specs[rel_dir] = _spec(lines) if lines else None
        return self._ignore_specs[rel_dir]

    def chain(self, rel_dir: str, names: Collection[str] | None = None) -> list[tuple[int, _OneRegex | GitIgnoreSpec]]:
        """The ignore specs that apply to the entries of ``rel_dir`` ("" = the root), outermost first, each
        with the length of the prefix to strip from an entry's path (its patterns are relative to its own
        directory). Cached per directory; ``names``: the directory's entries, if the caller listed it."""
        found = self._chains.get(rel_dir)
        if found is None:
            found = list(self.chain(rel_dir.rpartition("/")[0])) if rel_dir else []
            spec = self._dir_spec(rel_dir, names)
            if spec is not None:
                found.append((len(rel_dir) + 1 if rel_dir else 0, spec))
            self._chains[rel_dir] = found
        return found

    def ignored(self, rel_path: str, *, is_dir: bool = False) -> bool:
        return self.ignored_in(rel_path, self.chain(rel_path.rpartition("/")[0]), is_dir=is_dir)

    def ignored_in(
        self, rel_path: str, chain: list[tuple[int, _OneRegex | GitIgnoreSpec]], *, is_dir: bool = False
    ) -> bool:
        """``ignored`` for an entry of the directory whose ``chain`` the caller holds."""
        probe = rel_path + "/" if is_dir else rel_path
        if self._excluded.match_file(probe):
            return True
        return any(spec.match_file(probe[start:]) for start, spec in chain)

    def wanted(self, rel_path: str, chain: list[tuple[int, _OneRegex | GitIgnoreSpec]] | None = None) -> bool:
        """A file (not directory) the user wants indexed, judged by name alone (``chain``: its directory's)."""
        if not is_indexable_name(rel_path):  # first: a suffix look-up, where ignore patterns are ~100 regexes
            return False
        if self.ignored(rel_path) if chain is None else self.ignored_in(rel_path, chain):
            return False
        return self._included is None or bool(self._included.match_file(rel_path))


def is_indexable_name(rel_path: str) -> bool:
    from .chunking.languages import language_for_path  # engine.chunking imports tree-sitter: not needed here

    name = rel_path.rsplit("/", 1)[-1]
    if language_for_path(rel_path) is not None or name in TEXT_FILENAMES:
        return True
    return os.path.splitext(name)[1].lower() in TEXT_EXTENSIONS


def printable_path(rel_path: str) -> str:
    """A path fit for logs and JSON: undecodable bytes of a file name shown as ``\\xff`` escapes."""
    return rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _valid_name(rel_path: str) -> bool:
    try:
        rel_path.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, kept by Python as lone surrogates
        return False
    return True


def _inside(real: Path, root_real: Path) -> bool:
    return real == root_real or real.is_relative_to(root_real)


def _real_inside(path: Path, root_real: Path) -> Path | None:
    """The real path of ``path`` when it lies inside ``root_real``, else None (outside, loop, gone)."""
    try:
        real = Path(os.path.realpath(path, strict=True))
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, an embedded NUL
        return None
    return real if _inside(real, root_real) else None


def is_virtualenv(directory: Path) -> bool:
    """A virtualenv of any name: the folder holds ``pyvenv.cfg`` (PEP 405)."""
    return os.path.lexists(directory / VENV_MARKER)


def walk(root: Path, config: EngineConfig, skipped: list[tuple[str, str]] | None = None) -> Iterator[SourceFile]:
    """Yield the files to index under ``root``, sorted within each directory for stable order."""
    root_real = Path(os.path.realpath(root))
    for rel, abspath, size, mtime_ns in walk_entries(root_real, config, skipped):
        yield SourceFile(rel, abspath, size, mtime_ns, root_real)


def walk_entries(
    root_real: Path, config: EngineConfig, skipped: list[tuple[str, str]] | None = None
) -> Iterator[tuple[str, str, int, int]]:
    """``walk`` under a real root, as (path, real path, size, mtime_ns): no Path per file (engine/walk_child.py
    sends these as they are)."""
    file_filter = FileFilter(root_real, config)

    def skip(rel: str, reason: str, *, level: int = logging.INFO) -> None:
        log.log(level, "skipped %s: %s", printable_path(rel), reason)
        if skipped is not None:
            skipped.append((printable_path(rel), reason))

    base = str(root_real)
    max_size = config.max_file_size
    # Strings, not Paths, and the directory's own listing for its ignore files: per file the walk does
    # one lstat and a few dict and regex look-ups (13,600 files: 0.85 -> ~0.35 s, BENCHMARKS.md restart7).
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(base, rel_dir) if rel_dir else base) as listing:
                entries_sorted = sorted(listing, key=_entry_name)
        except OSError as exc:
            skip(rel_dir or ".", f"cannot list directory: {exc.strerror or exc}", level=logging.WARNING)
            continue
        names = {e.name for e in entries_sorted}
        if rel_dir and VENV_MARKER in names:
            skip(rel_dir, "a virtualenv (holds pyvenv.cfg)")
            continue
        chain = file_filter.chain(rel_dir, names)
        prefix = rel_dir + "/" if rel_dir else ""
        subdirs = []
        for entry in entries_sorted:
            rel = prefix + entry.name  # rel_dir's own name was checked before it was descended
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not _valid_name(entry.name):
                        skip(rel, "directory name is not valid UTF-8", level=logging.WARNING)
                    elif not file_filter.ignored_in(rel, chain, is_dir=True):
                        subdirs.append(rel)
                    continue
                if not _valid_name(entry.name):
                    if is_indexable_name(rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")):
                        skip(rel, "file name is not valid UTF-8", level=logging.WARNING)
                    continue
                if not file_filter.wanted(rel, chain):
                    continue
                if entry.is_symlink():
                    real = _real_inside(root_real / rel, root_real)
                    if real is None:
                        skip(rel, "symlink to a path outside the workspace (or a loop)")
                        continue
                    abspath = str(real)
                    info = os.stat(abspath, follow_symlinks=False)
                else:
                    abspath = entry.path  # root_real / rel, as a string
                    info = entry.stat(follow_symlinks=False)  # its lstat
            except OSError as exc:
                skip(rel, f"cannot stat: {exc.strerror or exc}")
                continue
            if not stat_mode.S_ISREG(info.st_mode):
                if not stat_mode.S_ISDIR(info.st_mode):  # a symlink to a directory is simply not descended
                    skip(rel, "not a regular file")
                continue
            if info.st_size > max_size:
                skip(rel, f"larger than max_file_size ({info.st_size} > {max_size} bytes)")
                continue
            yield rel, abspath, info.st_size, info.st_mtime_ns
        stack.extend(reversed(subdirs))


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def source_file(root: Path, rel_path: str, config: EngineConfig) -> SourceFile | None:
    """The SourceFile for one path if it is indexable now, else None (deleted, ignored, too large, outside)."""
    if not _valid_name(rel_path) or not FileFilter(root, config).wanted(rel_path):
        return None
    root_real = Path(os.path.realpath(root))
    real = _real_inside(root_real / rel_path, root_real)
    if real is None:
        return None
    parent = (root_real / rel_path).parent
    while parent != root_real and _inside(parent, root_real):
        if is_virtualenv(parent):
            return None
        parent = parent.parent
    try:
        info = os.stat(real, follow_symlinks=False)
    except OSError:
        return None
    if not stat_mode.S_ISREG(info.st_mode) or info.st_size > config.max_file_size:
        return None
    return SourceFile(rel_path, str(real), info.st_size, info.st_mtime_ns, root_real)


def buffer_path_allowed(root: Path, rel_path: str, config: EngineConfig) -> bool:
    """Whether an editor's unsaved text of ``rel_path`` may be searched in place of the file.

    The path must pass every rule the index applies to names and places (ignore files, excludes,
    include patterns, virtualenvs, inside the workspace's real root); a file that exists must be a
    regular one. The file need not exist yet (a new, unsaved file). Content rules (size, binary,
    secrets) are the caller's: they apply to the buffer's text, not to the disk copy.
    """
    if not _valid_name(rel_path) or not FileFilter(root, config).wanted(rel_path):
        return False
    root_real = Path(os.path.realpath(root))
    target = root_real / rel_path
    if os.path.lexists(target):
        real = _real_inside(target, root_real)
        try:
            if real is None or not stat_mode.S_ISREG(os.stat(real).st_mode):
                return False
        except OSError:  # gone since the check
            return False
    elif _real_inside(target.parent, root_real) is None:
        return False
    parent = target.parent
    while parent != root_real and _inside(parent, root_real):
        if is_virtualenv(parent):
            return False
        parent = parent.parent
    return True


def _open_regular(path: Path, *, follow: bool) -> int:
    """An fd open for reading on a regular file; OSError otherwise (never blocks on a FIFO)."""
    flags = _OPEN_FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat_mode.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes; the fd was opened O_NONBLOCK, which regular files ignore."""
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        part = os.read(fd, min(remaining, 1 << 20))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _read_regular(path: Path, max_size: int, *, root: Path) -> bytes | None:
    """A small regular file inside ``root`` (ignore files), or None for anything else."""
    real = _real_inside(path, Path(os.path.realpath(root)))
    if real is None:
        return None
    try:
        fd = _open_regular(real, follow=False)
    except OSError:
        return None
    try:
        return _read_fd(fd, max_size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _decode(data: bytes, label: str, max_size: int) -> str:
    if len(data) > max_size:
        raise SourceFileError(f"{label}: larger than max_file_size ({max_size} bytes)")
    if b"\0" in data[:8192]:
        raise SourceFileError(f"{label}: binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFileError(f"{label}: not valid UTF-8 (byte {exc.start})") from exc
    return text.removeprefix("\ufeff")


def read_source(file: SourceFile, max_size: int) -> str:
    """Read a file as UTF-8 text; binary, oversized, undecodable or non-regular files raise SourceFileError.

    ``FileNotFoundError`` passes through (the file was deleted since the walk). The final path
    component is opened without following symlinks: ``abspath`` is already the real path, so a
    symlink there means the file was swapped since the walk.
    """
    return _read_text(file.abspath, printable_path(file.path), max_size, root=file.root)


def read_workspace_text(root: Path, path: str | Path, max_size: int) -> str:
    """The text of a workspace file, for callers outside the indexer (documentSymbol, find similar).

    ``path`` is absolute or relative to ``root``. Raises SourceFileError when the file's real path
    (symlinks resolved) is outside ``root``, when it is missing or not a regular file (a FIFO is never
    opened for reading, so this cannot block), larger than ``max_size`` bytes, binary, or not UTF-8.
    """
    root_real = Path(os.path.realpath(root))
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root_real / candidate
    label = printable_path(str(path))
    real = _real_inside(candidate, root_real)
    if real is None:
        if not os.path.lexists(candidate):
            raise SourceFileError(f"{label}: no such file")
        raise SourceFileError(f"{label}: outside the workspace {root_real} (or a symlink loop)")
    try:
        return _read_text(real, label, max_size, root=root_real)
    except FileNotFoundError as exc:  # deleted since the check
        raise SourceFileError(f"{label}: no such file") from exc


def _read_text(real: Path, label: str, max_size: int, *, root: Path | None) -> str:
    """The one safe read of a file's text (``real``: its real path, symlinks resolved).

    Opened without following a final symlink, non-blocking and checked to be a regular file; with
    ``root``, re-checked after the open to still lie inside it. ``FileNotFoundError`` passes through.
    """
    try:
        fd = _open_regular(real, follow=False)
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise SourceFileError(f"{label}: permission denied") from exc
    except OSError as exc:
        raise SourceFileError(f"{label}: cannot read ({exc.strerror or 'not a regular file'})") from exc
    try:
        if root is not None:
            # Re-check after the open: a directory on the way may have been swapped for a symlink.
            inside = _real_inside(real, root)
            if inside is None or not os.path.samestat(os.fstat(fd), os.stat(inside)):
                raise SourceFileError(f"{label}: moved outside the workspace while being read")
        data = _read_fd(fd, max_size + 1)
    except OSError as exc:
        raise SourceFileError(f"{label}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    return _decode(data, label, max_size)


def secret_reason(text: str) -> str | None:
    """Why ``text`` must not be indexed (it holds a private key or an access token), else None.

    The reason names the kind of secret, never the secret itself.
    """
    if not any(literal in text for literal in _SECRET_LITERALS):
        return None
    found = _SECRETS.search(text)
    if found is None:
        return None
    return f"holds {_SECRET_NAMES[found.lastgroup or 'pem']}"

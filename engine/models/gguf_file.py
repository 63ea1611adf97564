"""Fast inspection of a GGUF file without loading it into llama.cpp.

llama.cpp reacts to a bad file by aborting the process or by a bare NULL; we want a precise error that
names the file and the fix, in well under a second even for a multi-GB model. ``gguf.GGUFReader`` is
not used: it memory-maps the tensor data but builds a numpy view per vocabulary entry, which takes
seconds for a 150K-token vocabulary. The header is parsed here with ``struct`` over an mmap instead;
only the header and two MiB of tensor data are ever touched.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError, NotEmbeddingModelError, NotGGUFError, TruncatedModelError

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_FINGERPRINT_SPAN = 1 << 20  # bytes of tensor data hashed at each end of the file

# Encoder architectures llama.cpp runs bidirectionally and can pool: embedding models by construction.
ENCODER_ARCHITECTURES: frozenset[str] = frozenset(
    {
        "bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2", "jina-bert-v3",
        "eurobert", "t5encoder", "gemma-embedding", "llama-embed",
    }
)  # fmt: skip

POOLING_NAMES: dict[int, str] = {-1: "unspecified", 0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}

# GGUF value types: code -> struct format of a scalar (8 = string, 9 = array are handled apart).
_SCALAR_FORMATS: dict[int, str] = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9

# ggml tensor types: code -> (elements per block, bytes per block). Copied from gguf.GGML_QUANT_SIZES so
# that validation does not import gguf (200 ms); unknown codes fall back to gguf itself.
_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of a GGUF file's header: its name, ggml type code and shape (ne0 first)."""

    name: str
    ttype: int
    shape: tuple[int, ...]
    offset: int = 0  # of its data, from the start of the data section

    @property
    def elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def nbytes(self) -> int:
        return _tensor_bytes(self.ttype, self.elements)


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """What the engine needs from a GGUF header."""

    path: Path
    architecture: str
    name: str  # general.name, or the file stem when the file has none
    dimension: int  # <arch>.embedding_length
    context_length: int  # <arch>.context_length (training context, in tokens)
    pooling: str  # "mean", "cls", "last", "none", "unspecified"
    causal_attention: bool | None  # <arch>.attention.causal when present
    file_size: int
    fingerprint: str  # sha256 over size, header and the first/last MiB of tensor data
    version: int
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # scalar and string keys only
    tensors: tuple[TensorEntry, ...] = field(default=(), repr=False)  # the header's tensor table

    @property
    def tensor_count(self) -> int:
        return len(self.tensors)

    @property
    def is_encoder(self) -> bool:
        return self.architecture in ENCODER_ARCHITECTURES


class _Truncated(Exception):
    """Raised by the parser when the header runs past the end of the file."""


class _HeaderParser:
    """Walks GGUF header bytes. Arrays are skipped (only their length is kept): vocabularies are big."""

    def __init__(self, buf: mmap.mmap | bytes, endian: str) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.e = endian

    def _take(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise _Truncated
        (value,) = struct.unpack_from(self.e + fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self) -> str:
        n = self._take("Q")
        if self.pos + n > self.size:
            raise _Truncated
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self._take("Q")
        self.pos += n
        if self.pos > self.size:
            raise _Truncated

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self._take("I")
            count = self._take("Q")
            self.skip_array(item_type, count)
            return _ArrayValue(item_type, count)
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is None:
            raise ValueError(f"unknown GGUF value type {vtype}")
        return self._take(fmt)

    def skip_array(self, item_type: int, count: int) -> None:
        fmt = _SCALAR_FORMATS.get(item_type)
        if fmt is not None:
            self.pos += struct.calcsize(fmt) * count
            if self.pos > self.size:
                raise _Truncated
            return
        if item_type == _STRING:
            buf, pos, size, unpack = self.buf, self.pos, self.size, struct.Struct(self.e + "Q").unpack_from
            for _ in range(count):  # a tight loop: ~10 M strings/s is plenty for any vocabulary
                if pos + 8 > size:
                    raise _Truncated
                pos += 8 + unpack(buf, pos)[0]
            if pos > size:
                raise _Truncated
            self.pos = pos
            return
        if item_type == _ARRAY:
            for _ in range(count):
                self.skip_array(self._take("I"), self._take("Q"))
            return
        raise ValueError(f"unknown GGUF array item type {item_type}")


@dataclass(frozen=True, slots=True)
class _ArrayValue:
    item_type: int
    count: int


def inspect_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and check a GGUF header; raise a precise ModelError subclass when the file cannot work."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFoundError(
            f"model file not found: {p}. Set 'model_path' to an existing .gguf embedding model, "
            "or leave it unset to use the bundled all-MiniLM-L6-v2."
        )
    if not p.is_file():
        raise ModelNotFoundError(f"model path is not a file: {p}. Point 'model_path' at a .gguf file.")
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise TruncatedModelError(
                    f"model file is empty: {p}. The download or copy was interrupted; fetch the file again."
                )
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _inspect(p, buf, size)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read model file {p}: {exc.strerror or exc}. Check its permissions.") from exc


def _inspect(p: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    head = bytes(buf[:4])
    if head != GGUF_MAGIC:
        if size < 4 and GGUF_MAGIC.startswith(head):
            raise TruncatedModelError(f"model file is truncated ({size} bytes): {p}. Fetch the file again.")
        raise NotGGUFError(
            f"not a GGUF file (it starts with {head!r}, not b'GGUF'): {p}. semcode needs a GGUF embedding "
            "model; convert other formats with llama.cpp's convert_hf_to_gguf.py."
        )
    if size < 24:
        raise TruncatedModelError(f"model file is truncated ({size} bytes, no full header): {p}. Fetch it again.")
    (version,) = struct.unpack_from("<I", buf, 4)
    endian = "<"
    if version & 0xFFFF == 0 and version != 0:  # a big-endian file read as little-endian
        endian = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (2, 3):
        raise NotGGUFError(
            f"unsupported GGUF version {version} in {p} (llama.cpp reads versions 2 and 3). "
            "Re-convert the model with a current llama.cpp."
        )
    parser = _HeaderParser(buf, endian)
    parser.pos = 8
    truncated = TruncatedModelError(
        f"model file is truncated: {p} ({size:,} bytes) ends inside its GGUF header. The download or copy "
        "was interrupted; fetch the file again."
    )
    metadata: dict[str, Any] = {}
    tensors: list[TensorEntry] = []
    try:
        tensor_count = parser._take("Q")
        kv_count = parser._take("Q")
        if kv_count > size or tensor_count > size:  # nonsense counts: garbage after the magic
            raise NotGGUFError(f"corrupt GGUF header in {p}: implausible key/tensor counts. Fetch the file again.")
        for _ in range(kv_count):
            key = parser.string()
            metadata[key] = parser.value(parser._take("I"))
        for _ in range(tensor_count):
            name = parser.string()
            n_dims = parser._take("I")
            shape = tuple(int(parser._take("Q")) for _ in range(n_dims))
            ttype = parser._take("I")
            tensors.append(TensorEntry(name, int(ttype), shape, int(parser._take("Q"))))
    except _Truncated:
        raise truncated from None
    except (ValueError, struct.error) as exc:
        raise NotGGUFError(f"corrupt GGUF header in {p}: {exc}. Fetch or convert the file again.") from exc

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    data_offset = -(-parser.pos // alignment) * alignment
    data_end = data_offset + max((t.offset + t.nbytes for t in tensors), default=0)
    if data_end > size:
        raise TruncatedModelError(
            f"model file is truncated: {p} has {size:,} bytes but its tensors need {data_end:,}. "
            "The download or copy was interrupted; fetch the file again."
        )

    scalars = {k: v for k, v in metadata.items() if not isinstance(v, _ArrayValue)}
    arch = str(scalars.get("general.architecture", ""))
    pooling_code = scalars.get(f"{arch}.pooling_type", -1)
    pooling = POOLING_NAMES.get(int(pooling_code), f"unknown({pooling_code})")
    causal = scalars.get(f"{arch}.attention.causal")
    info = GGUFInfo(
        path=p,
        architecture=arch,
        name=str(scalars.get("general.name") or p.stem),
        dimension=int(scalars.get(f"{arch}.embedding_length", 0)),
        context_length=int(scalars.get(f"{arch}.context_length", 0)),
        pooling=pooling,
        causal_attention=None if causal is None else bool(causal),
        file_size=size,
        fingerprint=_fingerprint(buf, size, data_offset),
        version=version,
        metadata=scalars,
        tensors=tuple(tensors),
    )
    _check_embedding(info)
    return info


def _tensor_bytes(ttype: int, elements: int) -> int:
    sizes = _TYPE_SIZES.get(ttype)
    if sizes is None:
        try:
            import gguf

            sizes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
        except (ImportError, ValueError, KeyError):
            return 0  # a type newer than our table: only its offset is checked
    block, nbytes = sizes
    return elements // block * nbytes


def _fingerprint(buf: mmap.mmap, size: int, data_offset: int) -> str:
    """Identifies the file content cheaply: header (vocab, hyper-parameters) and both ends of the tensors."""
    h = hashlib.sha256()
    h.update(size.to_bytes(8, "little"))
    h.update(buf[:data_offset])
    h.update(buf[data_offset : data_offset + _FINGERPRINT_SPAN])
    h.update(buf[max(data_offset, size - _FINGERPRINT_SPAN) : size])
    return h.hexdigest()


def _check_embedding(info: GGUFInfo) -> None:
    p, arch = info.path, info.architecture
    if not arch:
        raise NotEmbeddingModelError(
            f"{p} has no 'general.architecture' key, so llama.cpp cannot load it. Re-convert the model with "
            "llama.cpp's convert_hf_to_gguf.py."
        )
    fix = (
        "Use an embedding model (for example all-MiniLM-L6-v2, nomic-embed-code or bge-small in GGUF), "
        "or leave 'model_path' unset for the bundled default."
    )
    if arch == "clip":
        raise NotEmbeddingModelError(f"{p} is a vision projector (mmproj), not a text embedding model. {fix}")
    if info.pooling == "rank":
        raise NotEmbeddingModelError(f"{p} is a reranker (pooling 'rank'), not an embedding model. {fix}")
    declares_pooling = info.pooling not in ("none", "unspecified") and not info.pooling.startswith("unknown")
    if info.is_encoder or declares_pooling:
        if info.dimension <= 0:
            raise NotEmbeddingModelError(f"{p} has no '{arch}.embedding_length'; re-convert the model.")
        return
    raise NotEmbeddingModelError(
        f"{p} is a '{arch}' model with {'causal attention and ' if info.causal_attention is not False else ''}"
        f"no pooling type: a text-generation model, not an embedding model. {fix}"
    )


def tensor_table(path: str | os.PathLike[str]) -> list[TensorEntry]:
    """The tensors a GGUF file declares (names, types, shapes), from its header alone (milliseconds)."""
    return list(inspect_gguf(path).tensors)

"""Source files -> symbols (for documentSymbol) and chunks (for embedding)."""

from engine.chunking.chunker import CHUNKER_VERSION, HeaderFields, build_header, chunk_file
from engine.chunking.identifiers import split_identifier
from engine.chunking.languages import language_for_file, language_for_path
from engine.chunking.symbols import document_symbols

__all__ = [
    "CHUNKER_VERSION",
    "HeaderFields",
    "build_header",
    "chunk_file",
    "document_symbols",
    "language_for_file",
    "language_for_path",
    "split_identifier",
]

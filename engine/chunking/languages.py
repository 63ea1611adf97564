"""File name -> tree-sitter language, and which node types of each grammar are symbols.

Every node type below was checked against the grammars bundled with tree-sitter-language-pack 0.13
(``tests/engine/test_chunking.py`` asserts they all exist, because a misspelt type silently matches
nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",  # C++ headers parse acceptably with the C++ grammar too, but plain C is the safer default
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".lua": "lua",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".scala": "scala",
    ".sc": "scala",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".zig": "zig",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".mli": "ocaml",
    ".r": "r",
    ".R": "r",
    ".jl": "julia",
    ".vue": "vue",
    ".svelte": "svelte",
}

FILENAMES: dict[str, str] = {
    "Rakefile": "ruby",
    "Gemfile": "ruby",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".zshrc": "bash",
    ".profile": "bash",
}


def language_for_path(path: str) -> str | None:
    """The language-pack name for ``path`` (workspace-relative POSIX), or None when unknown."""
    # String operations, as PurePosixPath's name and suffix: the walk asks for every file it lists, and a
    # PurePosixPath cost ~45% of its per-file filtering (13,600 files).
    name = path.rpartition("/")[2]
    if name in ("", ".", ".."):  # not a plain file name: pathlib's own normalisation decides
        name = PurePosixPath(path).name
    if name in FILENAMES:
        return FILENAMES[name]
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
    return EXTENSIONS.get(suffix) or EXTENSIONS.get(suffix.lower())


# ``.h`` is shared by C and C++; these only occur in C++ (checked near the top of the file).
_CPP_MARKERS = re.compile(
    r"^\s*(?:class\s+\w+\s*[:{]|namespace\s+\w*\s*\{|template\s*<|(?:public|private|protected)\s*:)|\bstd::",
    re.MULTILINE,
)


def language_for_file(path: str, text: str) -> str | None:
    """Like ``language_for_path``, but a ``.h`` file that is C++ gets the C++ grammar."""
    language = language_for_path(path)
    if language == "c" and path.endswith(".h") and _CPP_MARKERS.search(text, 0, 50_000):
        return "cpp"
    return language


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """Which nodes of one grammar are symbols, and what sticks to them.

    ``symbols`` maps a node type to the symbol kind; ``symbols.py`` finds the name (``name`` field by
    default, special cases there). ``wrappers`` are parents that belong to the symbol's range
    (decorators, ``export``, ``template <...>``). ``attached`` are full-line nodes directly above a
    symbol that belong to its chunk (comments, Rust ``#[...]`` attributes).
    """

    symbols: dict[str, str]
    attached: tuple[str, ...] = ("comment",)
    wrappers: tuple[str, ...] = ()


# Top-level data definitions (Python module assignments). One-line ones are symbols for
# documentSymbol but not chunks of their own (see ``chunker._Chunker.run``).
VARIABLE_KINDS: frozenset[str] = frozenset({"variable", "constant"})

# Kinds whose symbols are split into a header chunk plus one chunk per member when too big.
CONTAINER_KINDS: frozenset[str] = frozenset(
    {"class", "interface", "struct", "enum", "trait", "impl", "module", "namespace", "object", "union"}
)

_JS_SYMBOLS: dict[str, str] = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
    # Named only through their parent (``const f = () => {}``, ``obj.m = function``, class fields);
    # anonymous callbacks are dropped by the name resolver.
    "arrow_function": "function",
    "function_expression": "function",
    # Top-level ``const NAME = ...`` of one name (resolvers._js_module_binding drops the rest).
    "lexical_declaration": "variable",
    "variable_declaration": "variable",
}
_TS_SYMBOLS: dict[str, str] = {
    **_JS_SYMBOLS,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "internal_module": "namespace",
    "module": "module",
    "method_signature": "method",
    "abstract_method_signature": "method",
    "function_signature": "function",
}
_C_SYMBOLS: dict[str, str] = {
    "function_definition": "function",
    "struct_specifier": "struct",  # only with a body; see symbols.py
    "union_specifier": "union",
    "enum_specifier": "enum",
}

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        # assignment: module-level ones only (the resolver drops the rest).
        {"function_definition": "function", "class_definition": "class", "assignment": "variable"},
        wrappers=("decorated_definition",),
    ),
    "javascript": LanguageSpec(_JS_SYMBOLS, wrappers=("export_statement",)),
    "typescript": LanguageSpec(_TS_SYMBOLS, wrappers=("export_statement", "ambient_declaration")),
    "tsx": LanguageSpec(_TS_SYMBOLS, wrappers=("export_statement", "ambient_declaration")),
    "go": LanguageSpec(
        {
            "function_declaration": "function",
            "method_declaration": "method",
            "type_spec": "type",  # struct / interface decided by the type child
            "type_alias": "type",
        }
    ),
    "rust": LanguageSpec(
        {
            "function_item": "function",
            "function_signature_item": "function",
            "struct_item": "struct",
            "enum_item": "enum",
            "union_item": "union",
            "trait_item": "trait",
            "impl_item": "impl",
            "mod_item": "module",
            "type_item": "type",
            "macro_definition": "macro",
        },
        attached=("line_comment", "block_comment", "attribute_item"),
    ),
    "java": LanguageSpec(
        {
            "class_declaration": "class",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "class",
            "annotation_type_declaration": "interface",
            "method_declaration": "method",
            "constructor_declaration": "constructor",
        },
        attached=("line_comment", "block_comment"),
    ),
    "c": LanguageSpec(_C_SYMBOLS),
    "cpp": LanguageSpec(
        {**_C_SYMBOLS, "class_specifier": "class", "namespace_definition": "namespace"},
        wrappers=("template_declaration",),
    ),
    "csharp": LanguageSpec(
        {
            "class_declaration": "class",
            "interface_declaration": "interface",
            "struct_declaration": "struct",
            "enum_declaration": "enum",
            "record_declaration": "class",
            "namespace_declaration": "namespace",
            "method_declaration": "method",
            "constructor_declaration": "constructor",
            "local_function_statement": "function",
        }
    ),
    "ruby": LanguageSpec({"class": "class", "module": "module", "method": "function", "singleton_method": "method"}),
    "php": LanguageSpec(
        {
            "class_declaration": "class",
            "interface_declaration": "interface",
            "trait_declaration": "trait",
            "enum_declaration": "enum",
            "function_definition": "function",
            "method_declaration": "method",
            "namespace_definition": "namespace",  # only the braced form; see symbols.py
        }
    ),
    "kotlin": LanguageSpec(
        {
            "class_declaration": "class",  # interface / enum decided by keyword
            "object_declaration": "object",
            "companion_object": "object",
            "function_declaration": "function",
        },
        attached=("line_comment", "multiline_comment"),
    ),
    "swift": LanguageSpec(
        {
            "class_declaration": "class",  # struct / enum / extension / actor from declaration_kind
            "protocol_declaration": "interface",
            "function_declaration": "function",
            "init_declaration": "constructor",
            "protocol_function_declaration": "method",
        },
        attached=("comment", "multiline_comment"),
    ),
    "lua": LanguageSpec({"function_declaration": "function", "function_definition": "function"}),
    "bash": LanguageSpec({"function_definition": "function"}),
    "scala": LanguageSpec(
        {
            "class_definition": "class",
            "object_definition": "object",
            "trait_definition": "trait",
            "enum_definition": "enum",
            "function_definition": "function",
            "function_declaration": "function",
        },
        attached=("comment", "block_comment"),
    ),
    "julia": LanguageSpec(
        {
            "function_definition": "function",
            "struct_definition": "struct",
            "module_definition": "module",
            "macro_definition": "macro",
        },
        attached=("line_comment", "block_comment"),
    ),
    "r": LanguageSpec({"function_definition": "function"}),
    # Dart functions are a signature node followed by a separate body node, which a single-node
    # range cannot express: only type declarations are symbols (their methods stay in windows).
    "dart": LanguageSpec(
        {
            "class_definition": "class",
            "mixin_declaration": "class",
            "extension_declaration": "extension",
            "enum_declaration": "enum",
        },
        attached=("comment", "documentation_comment"),
    ),
    # Elixir definitions are ordinary calls (``def``, ``defmodule``): resolvers.py keeps those.
    "elixir": LanguageSpec({"call": "function"}),
    "zig": LanguageSpec({"Decl": "function"}, attached=("line_comment", "doc_comment")),
    # Type signatures and haddock comments sit on their own lines above the equations they describe;
    # instances hold most of the code of a typical library (aeson: 263 of ~450 declarations in a file).
    "haskell": LanguageSpec(
        {
            "function": "function",
            "bind": "function",
            "data_type": "type",
            "newtype": "type",
            "type_synomym": "type",
            "class": "interface",
            "instance": "impl",
        },
        attached=("comment", "haddock", "signature", "pragma"),
    ),
    "ocaml": LanguageSpec({"value_definition": "function", "module_definition": "module", "type_definition": "type"}),
}

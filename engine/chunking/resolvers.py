"""Per-grammar name finders: tree-sitter node -> symbol name, kind and range node.

A resolver returns None when the node is not a symbol after all (an anonymous callback, a
``struct foo *p`` use, a bodiless PHP namespace).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node


@dataclass(slots=True)
class Resolved:
    name: str
    name_node: Node | None
    kind: str
    outer: Node
    display: str = ""
    scope: str = ""
    qualifier: str | None = None


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def _first_child(node: Node, *types: str) -> Node | None:
    for child in node.named_children:
        if child.type in types:
            return child
    return None


def _first_descendant(node: Node, *types: str) -> Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            return current
        stack.extend(reversed(current.named_children))
    return None


def _sole_named_child(parent: Node) -> bool:
    """True when ``parent`` holds one declaration (so its range is the symbol's, not shared)."""
    return sum(1 for c in parent.named_children if "comment" not in c.type) == 1


def by_name_field(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    if name_node is None:
        return None
    return Resolved(_text(name_node), name_node, kind, node)


def _js_function_value(node: Node, kind: str) -> Resolved | None:
    """``const f = () => {}``, ``obj.m = function () {}``, ``{ m: () => {} }``, class field arrows."""
    parent = node.parent
    if parent is None:
        return None
    ptype = parent.type
    if ptype == "variable_declarator" and parent.child_by_field_name("value") == node:
        name_node = parent.child_by_field_name("name")
        outer = parent
        grand = parent.parent
        declaration_types = ("lexical_declaration", "variable_declaration")
        if grand is not None and grand.type in declaration_types and _sole_named_child(grand):
            outer = grand
        return Resolved(_text(name_node), name_node, kind, outer)
    if ptype == "assignment_expression" and parent.child_by_field_name("right") == node:
        name_node = parent.child_by_field_name("left")
        grand = parent.parent
        outer = grand if grand is not None and grand.type == "expression_statement" else parent
        return Resolved(_text(name_node), name_node, kind, outer)
    if ptype == "pair" and parent.child_by_field_name("value") == node:
        name_node = parent.child_by_field_name("key")
        return Resolved(_text(name_node).strip("'\""), name_node, kind, parent)
    if ptype in ("field_definition", "public_field_definition"):
        name_node = parent.child_by_field_name("property") or parent.child_by_field_name("name")
        return Resolved(_text(name_node), name_node, kind, parent)
    return None


# Values named by ``_js_function_value`` already (``const f = () => {}``), or by their own node.
_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function", "class", "class_expression"}
)


_JS_FUNCTION_NODES = ("arrow_function", "function_expression", "function", "method_definition", "generator_function")


def _js_module_binding(node: Node, kind: str) -> Resolved | None:
    """A top-level ``const NAME = <value>`` / ``let`` / ``var`` of one plain name, the JS/TS twin of a
    Python module assignment: ``export const ZodType = core.$constructor("ZodType", (inst, def) =>
    { inst.parse = ...; ... })``, ``export const useStore = create((set) => ({...}))``.

    Without it such a value has no symbol, so every ``inst.x = () => ...`` inside it became a root
    symbol and a chunk of its own (zod: forty one-line chunks per schema type), and the definition
    itself had no name to be found by. Only a value that holds functions: plain data (date-fns' locale
    tables) stays in the gap's windows as before, so an upgrade re-embeds little. Functions and
    classes bound to a name are named by their own resolver; destructuring binds no single name.
    """
    parent = node.parent
    if parent is not None and parent.type == "export_statement":
        parent = parent.parent
    if parent is None or parent.type != "program":
        return None
    declarators = [c for c in node.named_children if c.type == "variable_declarator"]
    if len(declarators) != 1:
        return None
    name_node = declarators[0].child_by_field_name("name")
    value = declarators[0].child_by_field_name("value")
    if name_node is None or name_node.type != "identifier" or value is None or value.type in _JS_FUNCTION_VALUES:
        return None
    if _first_descendant(value, *_JS_FUNCTION_NODES) is None:
        return None  # plain data (a locale's table, a config object) stays in the gap's windows
    name = _text(name_node)
    kind = "constant" if name.upper() == name and any(c.isalpha() for c in name) else "variable"
    return Resolved(name, name_node, kind, node)


def _python_assignment(node: Node, kind: str) -> Resolved | None:
    """A module-level ``NAME = ...`` / ``NAME: T = ...`` (flask's ``g``, ``request``, ``session``).

    Only at module level and only to one plain name: assignments in functions are locals, and
    ``a, b = ...`` / ``obj.attr = ...`` define no module name of their own. UPPER_CASE names are
    constants (the convention pyright and the LSP use), the rest variables.
    """
    # The grammar hides ``expression_statement``: a statement's assignment is the module's child.
    parent = node.parent
    if parent is None or parent.type != "module":
        return None
    name_node = node.child_by_field_name("left")
    if name_node is None or name_node.type != "identifier":
        return None
    name = _text(name_node)
    kind = "constant" if name.upper() == name and any(c.isalpha() for c in name) else "variable"
    return Resolved(name, name_node, kind, node)


def _go_method(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    receiver = node.child_by_field_name("receiver")
    rtype = _first_descendant(receiver, "type_identifier") if receiver is not None else None
    recv = _text(rtype)
    pointer = receiver is not None and _first_descendant(receiver, "pointer_type") is not None
    name = _text(name_node)
    display = f"({'*' if pointer else ''}{recv}).{name}" if recv else name
    return Resolved(name, name_node, kind, node, display=display, qualifier=recv or None)


def _go_type(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    type_node = node.child_by_field_name("type")
    if type_node is not None and type_node.type == "struct_type":
        kind = "struct"
    elif type_node is not None and type_node.type == "interface_type":
        kind = "interface"
    outer = node
    if node.parent is not None and node.parent.type == "type_declaration" and _sole_named_child(node.parent):
        outer = node.parent
    return Resolved(_text(name_node), name_node, kind, outer)


def _rust_impl(node: Node, kind: str) -> Resolved | None:
    type_node = node.child_by_field_name("type")
    if type_node is None:
        return None
    base = type_node.child_by_field_name("type") if type_node.type == "generic_type" else type_node
    type_name = _text(base)
    trait = node.child_by_field_name("trait")
    name = f"{_text(trait)} for {type_name}" if trait is not None else type_name
    return Resolved(name, type_node, kind, node, display=f"impl {name}", scope=type_name)


_C_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "reference_declarator",
        "function_declarator",
        "parenthesized_declarator",
        "attributed_declarator",
    }
)


def _c_function(node: Node, kind: str) -> Resolved | None:
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type in _C_DECLARATOR_WRAPPERS:
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.named_child_count:  # reference_declarator has no field
            inner = declarator.named_children[-1]
        declarator = inner
    if declarator is None:
        return None
    if declarator.type == "qualified_identifier":  # out-of-class ``Foo::bar`` definition
        full = _text(declarator)
        name_node: Node | None = declarator
        while name_node is not None and name_node.type == "qualified_identifier":
            name_node = name_node.child_by_field_name("name")
        name = _text(name_node)
        scope = full[: -len(name)].rstrip(":") if name and full.endswith(name) else ""
        qualifier = scope.replace("::", ".") or None
        return Resolved(name, name_node, "method", node, display=full, qualifier=qualifier)
    return Resolved(_text(declarator), declarator, kind, node)


def _c_type(node: Node, kind: str) -> Resolved | None:
    if node.child_by_field_name("body") is None:  # ``struct foo *p;`` is a use, not a definition
        return None
    name_node = node.child_by_field_name("name")
    outer = node
    parent = node.parent
    if parent is not None and parent.type == "type_definition":
        outer = parent
        if name_node is None:  # typedef struct { ... } name_t;
            name_node = parent.child_by_field_name("declarator")
    if name_node is None:
        return None
    return Resolved(_text(name_node), name_node, kind, outer)


def _cpp_namespace(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    return Resolved(_text(name_node) or "(anonymous)", name_node, kind, node)


def _ruby_singleton(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    obj = _text(node.child_by_field_name("object"))
    name = _text(name_node)
    return Resolved(name, name_node, kind, node, display=f"{obj}.{name}" if obj else name)


def _php_namespace(node: Node, kind: str) -> Resolved | None:
    if node.child_by_field_name("body") is None:  # ``namespace App;`` covers nothing
        return None
    return by_name_field(node, kind)


def _kotlin_class(node: Node, kind: str) -> Resolved | None:
    keywords = {child.type for child in node.children if not child.is_named}
    if "interface" in keywords:
        kind = "interface"
    elif "enum" in keywords:
        kind = "enum"
    name_node = _first_child(node, "type_identifier", "simple_identifier")
    if name_node is None:
        if node.type == "companion_object":
            return Resolved("Companion", None, kind, node)
        return None
    return Resolved(_text(name_node), name_node, kind, node)


def _first_identifier(node: Node, kind: str) -> Resolved | None:
    name_node = _first_child(node, "simple_identifier", "identifier")
    if name_node is None:
        return None
    return Resolved(_text(name_node), name_node, kind, node)


_SWIFT_KINDS = {"struct": "struct", "enum": "enum", "extension": "extension", "actor": "class"}


def _swift_class(node: Node, kind: str) -> Resolved | None:
    declaration_kind = _text(node.child_by_field_name("declaration_kind"))
    resolved = by_name_field(node, _SWIFT_KINDS.get(declaration_kind, kind))
    return resolved


def _swift_init(node: Node, kind: str) -> Resolved | None:
    return Resolved("init", node.children[0] if node.children else None, kind, node)


def _lua_function_value(node: Node, kind: str) -> Resolved | None:
    """``M.handler = function () end`` and ``local f = function () end``."""
    parent = node.parent
    if parent is not None and parent.type == "field":  # { handler = function () end }
        name_node = parent.child_by_field_name("name")
        return Resolved(_text(name_node), name_node, kind, parent) if name_node is not None else None
    if parent is None or parent.type != "expression_list":
        return None
    assignment = parent.parent
    if assignment is None or assignment.type != "assignment_statement":
        return None
    targets = _first_child(assignment, "variable_list")
    if targets is None or targets.named_child_count != 1 or parent.named_child_count != 1:
        return None
    name_node = targets.named_children[0]
    outer = assignment
    if assignment.parent is not None and assignment.parent.type == "variable_declaration":
        outer = assignment.parent
    return Resolved(_text(name_node), name_node, kind, outer)


def _julia_definition(node: Node, kind: str) -> Resolved | None:
    name_node = node.child_by_field_name("name")
    if name_node is None:
        head = _first_child(node, "signature", "type_head")
        target = head if head is not None else node
        name_node = _first_descendant(target, "identifier")
    if name_node is None:
        return None
    return Resolved(_text(name_node), name_node, kind, node)


def _r_function(node: Node, kind: str) -> Resolved | None:
    parent = node.parent
    if parent is None or parent.type != "binary_operator" or parent.child_by_field_name("rhs") != node:
        return None
    name_node = parent.child_by_field_name("lhs")
    return Resolved(_text(name_node), name_node, kind, parent) if name_node is not None else None


def _ocaml_definition(node: Node, kind: str) -> Resolved | None:
    binding = _first_child(node, "let_binding", "module_binding", "type_binding")
    if binding is None:
        return None
    name_node = (
        binding.child_by_field_name("pattern")
        or binding.child_by_field_name("name")
        or _first_child(binding, "module_name")
    )
    if name_node is None or name_node.type not in ("value_name", "module_name", "type_constructor"):
        return None
    return Resolved(_text(name_node), name_node, kind, node)


_ELIXIR_DEFINITIONS = {
    "defmodule": "module",
    "defprotocol": "interface",
    "defimpl": "impl",
    "def": "function",
    "defp": "function",
    "defmacro": "macro",
    "defmacrop": "macro",
    "defguard": "function",
    "defdelegate": "function",
}


def _elixir_call(node: Node, kind: str) -> Resolved | None:
    kind = _ELIXIR_DEFINITIONS.get(_text(node.child_by_field_name("target")), "")
    arguments = _first_child(node, "arguments")
    if not kind or arguments is None or not arguments.named_child_count:
        return None
    head = arguments.named_children[0]
    if head.type == "binary_operator":  # def f(x) when is_integer(x)
        head = head.child_by_field_name("left") or head
    name_node = head.child_by_field_name("target") if head.type == "call" else head
    return Resolved(_text(name_node), name_node, kind, node) if name_node is not None else None


def _zig_decl(node: Node, kind: str) -> Resolved | None:
    proto = _first_child(node, "FnProto")
    if proto is not None:
        name_node = _first_child(proto, "IDENTIFIER")
        return Resolved(_text(name_node), name_node, "function", node) if name_node is not None else None
    var = _first_child(node, "VarDecl")
    container = _first_descendant(var, "ContainerDecl") if var is not None else None
    if var is None or container is None or not container.start_byte < var.end_byte:
        return None
    name_node = _first_child(var, "IDENTIFIER")
    container_type = _text(_first_child(container, "ContainerDeclType")).split("(")[0] or "struct"
    kind = container_type if container_type in ("struct", "enum", "union") else "struct"
    return Resolved(_text(name_node), name_node, kind, node) if name_node is not None else None


def _dart_type(node: Node, kind: str) -> Resolved | None:
    return by_name_field(node, kind) or _first_identifier(node, kind)


Resolver = Callable[["Node", str], "Resolved | None"]

RESOLVERS: dict[tuple[str, str], Resolver] = {}
for _lang in ("javascript", "typescript", "tsx"):
    RESOLVERS[(_lang, "arrow_function")] = _js_function_value
    RESOLVERS[(_lang, "function_expression")] = _js_function_value
    RESOLVERS[(_lang, "lexical_declaration")] = _js_module_binding
    RESOLVERS[(_lang, "variable_declaration")] = _js_module_binding
RESOLVERS[("go", "method_declaration")] = _go_method
RESOLVERS[("python", "assignment")] = _python_assignment
RESOLVERS[("go", "type_spec")] = _go_type
RESOLVERS[("go", "type_alias")] = _go_type
RESOLVERS[("rust", "impl_item")] = _rust_impl
for _lang in ("c", "cpp"):
    RESOLVERS[(_lang, "function_definition")] = _c_function
    for _type in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
        RESOLVERS[(_lang, _type)] = _c_type
RESOLVERS[("cpp", "namespace_definition")] = _cpp_namespace
RESOLVERS[("ruby", "singleton_method")] = _ruby_singleton
RESOLVERS[("php", "namespace_definition")] = _php_namespace
RESOLVERS[("kotlin", "class_declaration")] = _kotlin_class
RESOLVERS[("kotlin", "object_declaration")] = _kotlin_class
RESOLVERS[("kotlin", "companion_object")] = _kotlin_class
RESOLVERS[("kotlin", "function_declaration")] = _first_identifier
RESOLVERS[("swift", "class_declaration")] = _swift_class
RESOLVERS[("swift", "function_declaration")] = _first_identifier
RESOLVERS[("swift", "protocol_function_declaration")] = _first_identifier
RESOLVERS[("swift", "init_declaration")] = _swift_init
RESOLVERS[("lua", "function_definition")] = _lua_function_value
for _type in ("function_definition", "struct_definition", "module_definition", "macro_definition"):
    RESOLVERS[("julia", _type)] = _julia_definition
RESOLVERS[("r", "function_definition")] = _r_function
RESOLVERS[("elixir", "call")] = _elixir_call
RESOLVERS[("zig", "Decl")] = _zig_decl
for _type in ("class_definition", "mixin_declaration", "extension_declaration", "enum_declaration"):
    RESOLVERS[("dart", _type)] = _dart_type
for _type in ("value_definition", "module_definition", "type_definition"):
    RESOLVERS[("ocaml", _type)] = _ocaml_definition

_BODY_TYPES = frozenset(
    {
        "block",
        "statement_block",
        "compound_statement",
        "declaration_list",
        "field_declaration_list",
        "class_body",
        "function_body",
        "enum_body",
        "body_statement",
        "template_body",
        "interface_body",
        "protocol_body",
        "enum_class_body",
        "do_block",
        "Block",
        "ContainerDecl",
        "extension_body",
    }
)


def body_of(node: Node) -> Node | None:
    """The body of a definition (elided in header chunks), or None for a bodiless declaration."""
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in reversed(node.named_children):
        if child.type in _BODY_TYPES:
            return child
    return None


def resolve(language: str, node: Node, kind: str) -> Resolved | None:
    return RESOLVERS.get((language, node.type), by_name_field)(node, kind)

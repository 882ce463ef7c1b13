#!/usr/bin/env python3
"""Import cycles between the modules of each library crate of the workspace.

A module is a source file (`lib.rs` is the crate root, `a/mod.rs` and `a.rs` are `a`). Module A
depends on module B when A's code names a path into B: a `use crate::…`, `use super::…` or
`self::…` item, or such a path written inline. A name re-exported by a module counts as the
module that defines it. Two uses are structure, not dependencies: a module's `pub use` of its
own children (its facade), and a child's use of its ancestors (a module and its children are
one unit of privacy, as `super::` says). Code from `#[cfg(test)]` on is left out: tests may use anything.

Prints each cycle, then "N import cycles"; exits 1 when there is one.
Usage: python3 .ci/import_cycles.py [crate dir...]
"""

import re
import sys
from pathlib import Path

CRATES = ["gcm-proto", "gcm-mock", "gcm-hyper", "gcm-queue"]
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M | re.S)
INLINE = re.compile(r"\b(?:crate|super|self)(?:::[A-Za-z_]\w*)+")
COMMENT = re.compile(r"//[^\n]*")


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "mod"):
        parts.pop()
    return tuple(parts)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e] (aliases dropped)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    if "{" not in tree:
        return [tree.removesuffix("::self")]
    head, _, rest = tree.partition("{")
    body = rest[: rest.rfind("}")]
    items, depth, current = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    items.append(current)
    return [path for item in items if item for path in expand(head + item)]


def absolute(module: tuple, path: list, children: set) -> list | None:
    """A path as segments from the crate root; None when it names another crate (or leaves
    this one). A child module's name starts a path too (`mod legacy;` … `legacy::parse`)."""
    if path[0] in children:
        path = ["self", *path]
    if path[0] == "crate":
        return path[1:]
    if path[0] not in ("super", "self"):
        return None
    base = list(module)
    while path and path[0] in ("super", "self"):
        if path.pop(0) == "super":
            if not base:
                return None
            base.pop()
    return base + path


def children_of(text: str) -> set:
    """The modules a file declares (`mod x;`)."""
    return set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M))


def main(crates: list) -> int:
    cycles, count = [], 0
    for crate in crates:
        src = Path(crate) / "src"
        files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
        texts = {}
        for file in files:
            text = COMMENT.sub("", file.read_text())
            test = re.search(r"^\s*#\[cfg\(test\)\]", text, re.M)
            texts[module_of(src, file)] = text[: test.start()] if test else text
        modules = set(texts)
        children = {module: children_of(text) for module, text in texts.items()}
        # Re-exports: (module, name) → the absolute path it stands for.
        reexports = {}
        for module, text in texts.items():
            for visibility, tree in USE.findall(text):
                if not visibility:
                    continue
                for path in expand(tree):
                    segments = absolute(module, path.split("::"), children[module])
                    if segments:
                        reexports[(module, segments[-1])] = segments

        def resolve(segments: list, seen=0) -> tuple | None:
            for cut in range(len(segments), -1, -1):
                prefix = tuple(segments[:cut])
                if prefix in modules:
                    rest = segments[cut:]
                    if rest and (prefix, rest[0]) in reexports and seen < 10:
                        target = reexports[(prefix, rest[0])]
                        if target != segments:
                            return resolve(target + rest[1:], seen + 1)
                    return prefix
            return None

        edges = {module: set() for module in modules}
        for module, text in texts.items():
            mine = children[module]
            paths = []
            for visibility, tree in USE.findall(text):
                for path in expand(tree):
                    resolved = absolute(module, path.split("::"), mine)
                    # A facade's re-export of its own children is structure, not a dependency.
                    if visibility and resolved and tuple(resolved[: len(module)]) == module:
                        continue
                    paths.append(resolved)
            body = USE.sub("", text)
            paths += [absolute(module, match.split("::"), mine) for match in INLINE.findall(body)]
            if mine:
                inline_child = re.compile(r"(?<![\w:])(?:%s)(?:::[A-Za-z_]\w*)+" % "|".join(mine))
                paths += [absolute(module, m.split("::"), mine) for m in inline_child.findall(body)]
            for segments in paths:
                target = resolve(segments) if segments else None
                # A child may use its ancestors: a module and its children share one privacy.
                if target is not None and target != module[: len(target)]:
                    edges[module].add(target)

        for component in strongly_connected(edges):
            if len(component) > 1:
                count += 1
                names = sorted("::".join(m) or "(crate root)" for m in component)
                cycles.append(f"{crate}: {' <-> '.join(names)}")
                for m in sorted(component):
                    inside = sorted("::".join(t) or "(crate root)" for t in edges[m] if t in component)
                    cycles.append(f"    {'::'.join(m) or '(crate root)'} uses {', '.join(inside)}")
    for line in cycles:
        print(line)
    print(f"{count} import cycles")
    return 1 if count else 0


def strongly_connected(edges: dict) -> list:
    """Tarjan's algorithm, iterative enough for a crate's few dozen modules."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            result.append(component)

    for node in edges:
        if node not in index:
            visit(node)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or CRATES))

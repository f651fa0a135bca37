#!/usr/bin/env python3
"""Lists the file-level import graph of a Rust crate's `src/` and its cycles.

An edge A -> B means file A names an item that lives in file B: through `use crate::…`,
`use super::…`, `use self::…`, a `use` of a child module, or such a path written inline in code
(`super::x::f()`, `crate::risk::trading_day_start`). A path is charged to the deepest file module
it passes through, so `crate::engine::Engine` (a re-export in `engine/mod.rs`) is an edge to
`engine/mod.rs`. `mod x;` declarations alone are not edges.

Usage: scripts/import-graph.py [--src src] [--edges] [--never architecture.json]
Exits 1 when there is a cycle (or a "never" rule is broken), 0 otherwise.
"""

import argparse
import json
import os
import re
import sys
from collections import defaultdict


def strip(text):
    """Blanks comments, string and char literals (keeps line structure)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif re.match(r'b?r#*"', text[i : i + 8]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text[i:j].count("\n"))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text[i : j + 1].count("\n"))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^'\\])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


TOKEN = re.compile(r"r#\w+|\w+|::|[{}();,*]|#!?\[|\S")


def tokens(text):
    return TOKEN.findall(text)


class Inline:
    """Tracks the inline modules (`mod x { … }`) the token stream is inside, by brace depth."""

    def __init__(self):
        self.stack, self.depth = [], 0

    def names(self):
        return [s for s, _ in self.stack]

    def feed(self, toks, i):
        """Follows toks[i]; True when it was a brace or an inline `mod` (nothing else to see)."""
        t = toks[i]
        if t == "{":
            self.depth += 1
        elif t == "}":
            self.depth -= 1
            while self.stack and self.stack[-1][1] > self.depth:
                self.stack.pop()
        elif t == "mod" and i + 2 < len(toks) and toks[i + 2] == "{":
            self.stack.append((toks[i + 1], self.depth + 1))
        else:
            return False
        return True


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path tuple -> file path
        self.children = defaultdict(set)  # module path -> child names (file and inline)
        self.walk((), os.path.join(src, "lib.rs"), os.path.join(src))

    def walk(self, mod, path, dir_for_children):
        self.files[mod] = path
        toks = tokens(strip(open(path).read()))
        self._declared(mod, toks, dir_for_children, path)

    def _declared(self, mod, toks, child_dir, path):
        # Finds `mod x;` (file modules, honouring #[path]) and `mod x { … }` (inline).
        i, inline, attr_path = 0, Inline(), None
        while i < len(toks):
            t = toks[i]
            if t in ("#[", "#!["):
                j, d = i + 1, 1
                while j < len(toks) and d:
                    d += {"[": 1, "]": -1}.get(toks[j], 0)
                    j += 1
                if toks[i + 1 : i + 3] == ["path", "="]:
                    # The literal was blanked by strip(); files_for_child reads it from the source.
                    attr_path = True
                i = j
                continue
            if t == "mod" and i + 2 < len(toks) and re.match(r"\w+$", toks[i + 1]):
                name, after = toks[i + 1], toks[i + 2]
                self.children[mod + tuple(inline.names())].add(name)
                if after == ";" and not inline.stack:
                    self.files_for_child(mod, name, child_dir, path, attr_path)
                inline.feed(toks, i)
                attr_path = None
            elif inline.feed(toks, i):
                pass
            elif t not in ("pub", "(", ")", "crate", "super", "in", "self"):
                attr_path = None
            i += 1

    def files_for_child(self, mod, name, child_dir, path, attr_path):
        if attr_path:
            raw = open(path).read()
            m = re.search(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+' + name + r"\s*;", raw)
            target = os.path.join(os.path.dirname(path), m.group(1))
            self.walk(mod + (name,), target, os.path.dirname(target))
            return
        base = os.path.join(child_dir, name)
        if os.path.exists(base + ".rs"):
            self.walk(mod + (name,), base + ".rs", base)
        else:
            self.walk(mod + (name,), os.path.join(base, "mod.rs"), base)


def use_paths(toks, i):
    """Parses a use tree from toks[i] (after `use`); returns (paths, index after `;`)."""

    def tree(i, prefix):
        paths = []
        seg = list(prefix)
        while i < len(toks):
            t = toks[i]
            if t == "{":
                i += 1
                while toks[i] != "}":
                    sub, i = tree(i, seg)
                    paths += sub
                    if toks[i] == ",":
                        i += 1
                i += 1
                return paths, i
            if t in (",", "}", ";"):
                if seg and seg[-1] == "self":
                    seg = seg[:-1]
                paths.append(seg)
                return paths, i
            if t == "as":
                i += 2
                continue
            if t == "*":
                paths.append(seg)
                i += 1
                continue
            if t != "::":
                seg = seg + [t]
            i += 1
        return paths, i

    paths, i = tree(i, [])
    while i < len(toks) and toks[i] != ";":
        i += 1
    return [p for p in paths if p], i + 1


def graph(crate):
    file_of = {v: k for k, v in crate.files.items()}
    edges = defaultdict(lambda: defaultdict(list))  # a -> b -> [where]

    def resolve(cur, path, in_use):
        segs = list(path)
        if not segs:
            return None
        head = segs[0]
        if head in ("crate", "moontick"):
            base, segs = [], segs[1:]
        elif head == "super" or head == "self":
            base = list(cur)
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif head in crate.children.get(tuple(cur), ()):
            base = list(cur)
        else:
            return None
        full = tuple(base + segs)
        best = None
        for k in range(len(full), -1, -1):
            if full[:k] in crate.files:
                best = full[:k]
                break
        return best

    for mod, path in crate.files.items():
        toks = tokens(strip(open(path).read()))
        inline, i = Inline(), 0
        while i < len(toks):
            t = toks[i]
            cur = list(mod) + inline.names()
            if inline.feed(toks, i):
                pass
            elif t == "use":
                paths, j = use_paths(toks, i + 1)
                for p in paths:
                    target = resolve(cur, p, True)
                    if target is not None and target != mod:
                        edges[mod][target].append("use " + "::".join(p))
                i = j
                continue
            elif re.match(r"\w+$", t) and i + 1 < len(toks) and toks[i + 1] == "::" and (i == 0 or toks[i - 1] != "::"):
                p, j = [t], i + 1
                while j + 1 < len(toks) and toks[j] == "::" and re.match(r"\w+$", toks[j + 1]):
                    p.append(toks[j + 1])
                    j += 2
                target = resolve(cur, p, False)
                if target is not None and target != mod:
                    edges[mod][target].append("::".join(p))
                i = j
                continue
            i += 1
    return edges


def cycles(edges, nodes):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, on, st, out, n = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        st.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(mod, crate):
    return os.path.relpath(crate.files[mod], os.path.dirname(crate.src.rstrip("/")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="src")
    ap.add_argument("--edges", action="store_true", help="print every edge and why")
    ap.add_argument("--never", help="architecture.json whose 'never' rules to check")
    args = ap.parse_args()
    crate = Crate(args.src)
    edges = graph(crate)
    bad = False
    if args.edges:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{name(a, crate)} -> {name(b, crate)}: {', '.join(sorted(set(edges[a][b])))}")
    comps = cycles(edges, crate.files.keys())
    for comp in comps:
        bad = True
        print("cycle:", " ".join(name(m, crate) for m in comp))
        members = set(comp)
        for a in comp:
            for b in sorted(edges[a]):
                if b in members:
                    print(f"    {name(a, crate)} -> {name(b, crate)}: {', '.join(sorted(set(edges[a][b])))}")
    if args.never:
        arch = json.load(open(args.never))
        part_of = {}
        for part, spec in arch["parts"].items():
            for p in spec["is"]:
                part_of[p.rstrip("/")] = part

        def part(mod):
            f = name(mod, crate)
            for p, pt in part_of.items():
                if f == p or f.startswith(p + "/"):
                    return pt
            return None

        for a_part, b_part, why in arch["never"]:
            for a in edges:
                if part(a) != a_part:
                    continue
                for b in edges[a]:
                    if part(b) == b_part:
                        bad = True
                        print(f"never {a_part} -> {b_part} ({why}): {name(a, crate)} -> {name(b, crate)}: {', '.join(sorted(set(edges[a][b])))}")
    if not comps and not bad:
        print(f"no cycles among {len(crate.files)} files")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# Copied from the team's shared tools, ../shared/tools/modcycles.py beside
# the checkout, which a CI clone does not have; only these comment lines are
# added. .ci/run calls this copy: copy the tool again when it changes there.
"""Module cycles inside each crate of a Rust workspace, read from `crate::` paths.

usage: modcycles.py CRATE_SRC_DIR...   (prints each cycle; exit 1 if any)
A module is a file (foo.rs or foo/mod.rs). An edge A -> B when A's code names
`crate::b::...` (in `use` lines or in paths); `crate::b` resolves to the
longest module prefix that exists. Re-exports through lib.rs (crate::Name
with no module) are ignored: they point at the root, which is not a module
here.
"""
import os, re, sys

def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                continue
            mods[tuple(rel)] = p
    return mods

PATH = re.compile(r"crate::((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*|\{)")
USE_GROUP = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)

def targets(text, mods):
    out = set()
    names = []
    for m in PATH.finditer(text):
        if m.group(1) != "{":
            names.append(m.group(1).split("::"))
    for g in USE_GROUP.finditer(text):
        for part in re.split(r",(?![^{]*\})", g.group(1)):
            part = part.strip()
            if not part:
                continue
            head = re.split(r"::|\s", part)
            names.append([h for h in head if re.match(r"^[A-Za-z_]\w*$", h)])
    for segs in names:
        for n in range(len(segs), 0, -1):
            if tuple(segs[:n]) in mods:
                out.add(tuple(segs[:n]))
                break
    return out

def strip_tests(text):
    # drop comments (doc links are not dependencies) and #[cfg(test)] blocks at the end
    # (a module's own tests are not its dependencies)
    text = re.sub(r"//[^\n]*", "", text)
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]

def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)
    for v in graph:
        if v not in index:
            visit(v)
    return out

bad = 0
for src in sys.argv[1:]:
    mods = modules(src)
    graph = {}
    for m, p in mods.items():
        deps = targets(strip_tests(open(p, encoding="utf-8", errors="replace").read()), mods)
        # a module using its own submodules or its parent's items is not a cycle by itself
        graph[m] = {d for d in deps if d != m and d[:len(m)] != m}
    for comp in sccs(graph):
        bad += 1
        print(f"{src}: cycle of {len(comp)} modules: " + ", ".join("::".join(c) for c in sorted(comp)))
sys.exit(1 if bad else 0)

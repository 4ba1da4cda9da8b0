#!/usr/bin/env python3
"""The public API of each published crate, as a checked-in listing.

usage: python3 scripts/api_listing.py           write api/<crate>.txt
       python3 scripts/api_listing.py --check   fail with a diff when one is stale

Why a listing: every public item is a promise across versions, and a new one
should show in review as a line in api/<crate>.txt, not hide in a diff of
doc comments. rustdoc's JSON output would be exact but needs nightly; this
reads the sources instead, from each crate's src/lib.rs through its `mod`
declarations (a binary-only crate such as spanline-cli has no library API).

What it lists, in source order (so the output is deterministic):
- every `pub` item (not `pub(crate)`, `pub(super)` or `pub(in ..)`) at
  module level, with its signature up to the body: fns, structs, enums,
  traits, type aliases, consts and statics (without their values), `pub use`
  and `pub mod`, and `#[macro_export]` macros;
- the `pub` fields of structs, the variants of enums and the items of traits;
- the `pub` items of inherent impls, under the impl's header;
- trait impls whose type or trait is one of the crate's public types;
- the attributes that change the API: cfg, derive, non_exhaustive,
  doc(hidden), deprecated, repr, must_use.
Modules gated by `#[cfg(test)]` are skipped. `pub` items of a private module
are listed too: the workspace lint `unreachable_pub` makes each of them
reachable through a `pub use`, so they are API.
"""

import difflib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_DIR = os.path.join(ROOT, "api")

KEEP_ATTR = re.compile(
    r"^#\[(cfg|cfg_attr|derive|non_exhaustive|doc\(hidden\)|deprecated|repr|must_use)(?![A-Za-z0-9_])"
)


def tokens(text):
    """Split Rust source into tokens: literals (strings, chars) whole, every
    other non-space character alone, runs of whitespace as one ' '.
    Comments are dropped."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            while i < n and text[i].isspace():
                i += 1
            out.append(" ")
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
            continue
        m = re.compile(r'b?r(#*)"').match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.index('"' + m.group(1), m.end()) + 1 + len(m.group(1))
            out.append(("lit", text[i:end]))
            i = end
            continue
        if c == '"' or (c == "b" and text.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(("lit", text[i : j + 1]))
            i = j + 1
            continue
        if c == "'":
            m = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'").match(text, i)
            if m:
                out.append(("lit", m.group(0)))
                i = m.end()
                continue
        if c.isalnum() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            out.append(text[i:j])
            i = j
            continue
        out.append(c)
        i += 1
    return out


def text_of(toks):
    """The tokens as one line, spaced the way rustfmt spaces one line, so a
    signature reflowed over several lines reads the same."""
    s = "".join(t[1] if isinstance(t, tuple) else t for t in toks)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"([(\[]) ", r"\1", s)
    s = re.sub(r",? ?([)\]])", r"\1", s)
    s = re.sub(r",? ?}", " }", s)
    s = re.sub(r",$", "", s)
    return s


def is_word(t):
    return isinstance(t, str) and (t[:1].isalnum() or t[:1] == "_")


class Parser:
    def __init__(self, toks):
        self.t = [t for t in toks]
        self.i = 0

    def peek(self, k=0):
        j, seen = self.i, 0
        while j < len(self.t):
            if self.t[j] != " ":
                if seen == k:
                    return self.t[j]
                seen += 1
            j += 1
        return None

    def skip_ws(self):
        while self.i < len(self.t) and self.t[self.i] == " ":
            self.i += 1

    def until_body(self, use=False):
        """Tokens up to (not including) a top-level `{` or `;`; returns
        (tokens, terminator)."""
        out, depth = [], 0
        while self.i < len(self.t):
            t = self.t[self.i]
            if t in ("(", "[") or use and t == "{":
                depth += 1
            elif t in (")", "]") or use and t == "}":
                depth -= 1
            elif depth == 0 and t in ("{", ";"):
                self.i += 1
                return out, t
            out.append(t)
            self.i += 1
        return out, None

    def block(self):
        """Tokens of a `{ ... }` body whose `{` was consumed, without the
        closing `}`."""
        out, depth = [], 1
        while self.i < len(self.t):
            t = self.t[self.i]
            self.i += 1
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if depth == 0:
                    return out
            out.append(t)
        return out

    def attribute(self):
        """An `#[...]` (or `#![...]`) at the cursor, as text."""
        start = self.i
        self.i += 1
        self.skip_ws()
        if self.t[self.i] == "!":
            self.i += 1
            self.skip_ws()
        depth = 0
        while self.i < len(self.t):
            t = self.t[self.i]
            self.i += 1
            if t == "[":
                depth += 1
            elif t == "]":
                depth -= 1
                if depth == 0:
                    break
        return text_of(self.t[start : self.i])


def split_top(toks, sep=","):
    parts, cur, depth = [], [], 0
    for t in toks:
        if t in ("(", "[", "{", "<"):
            depth += 1
        elif t in (")", "]", "}", ">"):
            depth -= 1
        if depth == 0 and t == sep:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    return [p for p in parts if text_of(p)]


def strip_value(sig):
    # `pub const X: T = value` -> `pub const X: T`
    return re.sub(r"\s=\s.*$", "", sig)


def kept(attrs):
    return [a for a in attrs if KEEP_ATTR.match(a)]


def vis_pub(words):
    return len(words) > 0 and words[0] == "pub" and (len(words) == 1 or words[1] != "(")


class Crate:
    def __init__(self, name, src):
        self.name, self.src = name, src
        self.lines = []
        self.pub_types = set()
        self.impls = []  # (indent, attrs, header, self_type, trait)
        self.counts = [0, 0]  # pub items declared, of them #[doc(hidden)]

    def emit(self, depth, attrs, sig):
        pad = "  " * depth
        for a in attrs:
            self.lines.append(pad + a)
        self.lines.append(pad + sig)
        if sig.startswith("pub ") or sig.startswith("pub("):
            self.counts[0] += 1
            self.counts[1] += "#[doc(hidden)]" in attrs

    def module(self, path, file, depth):
        with open(file, encoding="utf-8") as f:
            body = tokens(f.read())
        here = os.path.dirname(file)
        stem = os.path.splitext(os.path.basename(file))[0]
        # lib.rs's and mod.rs's submodules live beside them, foo.rs's in foo/
        subdir = here if stem in ("lib", "main", "mod") else os.path.join(here, stem)
        self.items(Parser(body), path, file, subdir, depth, context="mod")

    def items(self, p, path, file, subdir, depth, context, impl_pub=False):
        attrs = []
        while True:
            p.skip_ws()
            if p.i >= len(p.t):
                return
            t = p.t[p.i]
            if t == "#":
                attrs.append(p.attribute())
                continue
            if t in (";", "}"):
                p.i += 1
                attrs = []
                continue
            first = [w for w in p.t[p.i : p.i + 12] if w != " "]
            if first[:1] == ["pub"] and first[1:2] == ["("]:
                first = first[first.index(")") + 1 :]
            elif first[:1] == ["pub"]:
                first = first[1:]
            sig_toks, end = p.until_body(use=first[:1] == ["use"])
            words = [w for w in sig_toks if w != " "]
            sig = text_of(sig_toks)
            if not words:
                attrs = []
                continue
            if any(a.startswith("#[cfg(test") for a in attrs):
                if end == "{":
                    p.block()
                attrs = []
                continue
            public = vis_pub(words)
            rest = words[1:] if public else words
            if rest and rest[0] == "(":  # pub(crate) and friends
                k = rest.index(")")
                rest = rest[k + 1 :]
            kw = next((w for w in rest if w in (
                "fn", "struct", "enum", "trait", "type", "const", "static",
                "mod", "use", "impl", "union", "macro_rules", "extern")), None)
            in_trait = context == "trait"
            listed = public or in_trait
            if kw == "mod":
                name = rest[rest.index("mod") + 1]
                mod_attrs = kept(attrs)
                mark = len(self.lines)
                if public:
                    self.emit(depth, mod_attrs, sig)
                else:
                    self.emit(depth, mod_attrs, f"mod {name} (private: its pub items are re-exported)")
                if end == ";":
                    for cand in (os.path.join(subdir, name + ".rs"),
                                 os.path.join(subdir, name, "mod.rs")):
                        if os.path.exists(cand):
                            self.module(path + [name], cand, depth + 1)
                            break
                else:
                    inner = p.block()
                    q = Parser(inner)
                    self.items(q, path + [name], file, os.path.join(subdir, name), depth + 1, "mod")
                if not public and len(self.lines) == mark + 1 + len(mod_attrs):
                    del self.lines[mark:]  # a private module without pub items is no API
            elif kw == "impl":
                body = p.block() if end == "{" else []
                header = sig
                m = re.match(r"^(?:unsafe\s+)?impl\b(?:<.*?>)?\s*(.*)$", header)
                target = m.group(1) if m else header
                trait, self_ty = (None, target)
                if " for " in target:
                    trait, self_ty = target.split(" for ", 1)
                base = lambda s: re.sub(r"<.*", "", s.strip().lstrip("&").replace("dyn ", "").replace("mut ", "")).split("::")[-1].split(" ")[0]
                if trait is not None:
                    self.impls.append((depth, kept(attrs), len(self.lines), header, base(self_ty), base(trait)))
                else:
                    mark = len(self.lines)
                    self.emit(depth, kept(attrs), header)
                    q = Parser(body)
                    self.items(q, path, file, subdir, depth + 1, "impl")
                    if len(self.lines) == mark + 1 + len(kept(attrs)):
                        del self.lines[mark:]
            elif kw == "macro_rules":
                if end == "{":
                    p.block()
                if any(a.startswith("#[macro_export") for a in attrs):
                    name = rest[rest.index("macro_rules") + 2]
                    self.emit(depth, kept(attrs), f"macro_rules! {name}")
            elif kw in ("struct", "enum", "union", "trait"):
                name = rest[rest.index(kw) + 1]
                body = p.block() if end == "{" else None
                if listed:
                    self.pub_types.add(name)
                    self.emit(depth, kept(attrs), sig)
                    if body is not None and kw in ("struct", "union"):
                        for field in split_top(body):
                            fattrs, ftoks = self.split_attrs(field)
                            fw = [w for w in ftoks if w != " "]
                            if vis_pub(fw):
                                self.emit(depth + 1, kept(fattrs), text_of(ftoks))
                    elif body is not None and kw == "enum":
                        for var in split_top(body):
                            vattrs, vtoks = self.split_attrs(var)
                            self.emit(depth + 1, kept(vattrs), text_of(vtoks))
                    elif body is not None and kw == "trait":
                        self.items(Parser(body), path, file, subdir, depth + 1, "trait")
            elif kw in ("fn", "type", "const", "static", "use", "extern"):
                if end == "{":
                    p.block()
                if listed and (context != "impl" or public):
                    if kw == "type":
                        name = rest[rest.index("type") + 1]
                        self.pub_types.add(name)
                    if kw in ("const", "static"):
                        sig = strip_value(sig)
                    if kw == "use":
                        sig = sig.replace("{ ", "{").replace(" }", "}")
                    self.emit(depth, kept(attrs), sig)
            else:
                if end == "{":
                    p.block()
            attrs = []

    @staticmethod
    def split_attrs(toks):
        p = Parser(toks)
        attrs = []
        while True:
            p.skip_ws()
            if p.i < len(p.t) and p.t[p.i] == "#":
                attrs.append(p.attribute())
            else:
                return attrs, p.t[p.i :]

    def listing(self):
        self.module([], os.path.join(self.src, "lib.rs"), 0)
        # trait impls of the crate's public types (or of its public traits),
        # in source order, after the items
        extra = []
        for depth, attrs, _, header, self_ty, trait in self.impls:
            if self_ty in self.pub_types or trait in self.pub_types:
                extra += attrs + [header]
        head = [
            f"# The public API of {self.name}, read from {os.path.relpath(self.src, ROOT)}",
            "# by scripts/api_listing.py. Do not edit: regenerate with",
            "#     python3 scripts/api_listing.py",
            "# and review the diff: each new line is a new promise to users.",
            f"# {self.counts[0]} public items, {self.counts[1]} of them #[doc(hidden)]: those are",
            "# for spanline's own crates, outside the documented API and its semver promise.",
            "",
        ]
        tail = ["", "# trait impls of public types", *extra] if extra else []
        return "\n".join(head + self.lines + tail) + "\n"


def crates():
    out = []
    for manifest in ["Cargo.toml"] + sorted(
        os.path.join("crates", d, "Cargo.toml") for d in os.listdir(os.path.join(ROOT, "crates"))
    ):
        path = os.path.join(ROOT, manifest)
        if not os.path.exists(path):
            continue
        text = open(path, encoding="utf-8").read()
        package = text.split("[package]", 1)[1].split("\n[", 1)[0]
        name = re.search(r'^name\s*=\s*"([^"]+)"', package, re.M).group(1)
        if re.search(r"^publish\s*=\s*false", package, re.M):
            continue
        src = os.path.join(os.path.dirname(path), "src")
        if os.path.exists(os.path.join(src, "lib.rs")):
            out.append((name, src))
    return out


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    wanted = {}
    for name, src in crates():
        wanted[name + ".txt"] = Crate(name, src).listing()
    if not check:
        os.makedirs(API_DIR, exist_ok=True)
    for fname, text in sorted(wanted.items()):
        path = os.path.join(API_DIR, fname)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        if old == text:
            continue
        if check:
            stale.append(fname)
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True),
                f"a/api/{fname}", f"b/api/{fname} (from the sources)"))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote api/{fname}")
    if os.path.isdir(API_DIR):
        for fname in sorted(os.listdir(API_DIR)):
            if fname.endswith(".txt") and fname not in wanted:
                if check:
                    stale.append(fname)
                    print(f"api/{fname}: no published library crate of that name")
                else:
                    os.remove(os.path.join(API_DIR, fname))
                    print(f"removed api/{fname}")
    if stale:
        print(
            f"\nThe public API changed in {', '.join(stale)}. If that is meant, regenerate\n"
            "the listings with `python3 scripts/api_listing.py` and commit api/ with the\n"
            "change, so the new promises show in review.",
            file=sys.stderr,
        )
        sys.exit(1)
    if check:
        print(f"api/: {len(wanted)} listings up to date")


if __name__ == "__main__":
    main()

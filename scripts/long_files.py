#!/usr/bin/env python3
"""Every Rust file over 600 lines says why it is one file.

usage: long_files.py   (from the repository root; exit 1 on a finding)

A file past LIMIT lines must say, in its opening comment (the `//!` or `//`
lines before the first item), why it is one file: a paragraph that says
"one file" ("Why one file: ..."). That paragraph must not give the file's
size ("of about 800 lines"): such figures go stale with the next edit, and
the reason is what a reader needs.
"""
import re
import subprocess
import sys

LIMIT = 600
REASON = re.compile(r"(?i)\bone file\b")
SIZE = re.compile(r"\b\d[\d,]* lines\b")


def opening_comment(lines):
    """The comment lines before the first line of code (attributes end it)."""
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("//"):
            out.append(stripped)
        elif stripped:
            break
    return out


def reason(comment):
    """The paragraph that says why the file is one file, or None."""
    paragraphs, current = [], []
    for line in comment + ["//"]:
        if line.strip("/! ") == "":
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(line.lstrip("/! "))
    return next((p for p in paragraphs if REASON.search(p)), None)


def main():
    files = subprocess.run(
        ["git", "ls-files", "*.rs"], check=True, capture_output=True, text=True
    ).stdout.split()
    findings = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if len(lines) <= LIMIT:
            continue
        why = reason(opening_comment(lines))
        if why is None:
            findings.append(
                f"{path}: {len(lines)} lines and no 'Why one file:' paragraph "
                "in its opening comment: split it along its ideas, or say why not"
            )
        elif size := SIZE.search(why):
            findings.append(
                f"{path}: its 'why one file' paragraph gives a size "
                f"('{size.group(0)}'), which goes stale: give the reason only"
            )
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

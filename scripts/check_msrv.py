#!/usr/bin/env python3
"""The stated minimum Rust version is true for the locked dependencies.

Compares the workspace's `rust-version` (Cargo.toml, and the sentence in
README.md) with the `rust-version` of every package in Cargo.lock, as
`cargo metadata --locked` reports them. Fails, naming each dependency
that needs a newer Rust, when one does. Run from the workspace root.
"""
import glob
import json
import re
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(meta["workspace_members"])
    stated = {p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")}
    if len(stated) != 1:
        sys.exit(f"workspace members state different minimum Rust versions: {sorted(stated)}")
    msrv = stated.pop()
    # The READMEs and clippy.toml say the same version.
    for path in ["README.md", "clippy.toml"] + sorted(glob.glob("crates/*/README.md")):
        text = open(path, encoding="utf-8").read()
        for said in re.findall(r"(?:minimum\s+supported(?:\s+Rust)?\s+version\s+is|msrv\s*=)\s*\"?(\d+\.\d+)", text):
            if version(said) != version(msrv):
                sys.exit(f"{path} says the minimum Rust version is {said}, Cargo.toml says {msrv}")
    newer = sorted(
        (version(p["rust_version"]), p["name"], p["version"])
        for p in meta["packages"]
        if p["id"] not in members and p.get("rust_version") and version(p["rust_version"]) > version(msrv)
    )
    if newer:
        for need, name, ver in newer:
            print(f"{name} {ver} needs Rust {'.'.join(map(str, need))}", file=sys.stderr)
        sys.exit(f"rust-version {msrv} is below what {len(newer)} locked dependencies need")
    checked = sum(1 for p in meta["packages"] if p["id"] not in members and p.get("rust_version"))
    print(f"rust-version {msrv}: every locked dependency that states one ({checked}) needs no newer Rust")


if __name__ == "__main__":
    main()

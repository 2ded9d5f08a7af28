"""Unpack one file from a package tarball, but only if the tarball's SHA-512 is the pinned one.

    python tools/unpack_checked.py PACKAGE.tgz SHA512-BASE64 MEMBER DESTINATION

The Makefile uses it for axe-core (npm's "integrity" is a base64 SHA-512 of the tarball). Exits 1,
writing nothing, when the hash differs or the member is missing.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import tarfile
from pathlib import Path


def main(tarball: str, expected: str, member: str, destination: str) -> int:
    data = Path(tarball).read_bytes()
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        print(f"{tarball}: SHA-512 {actual} is not the pinned {expected}", file=sys.stderr)
        return 1
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            found = archive.extractfile(member)
        except KeyError:
            found = None
        if found is None:
            print(f"{tarball}: no {member} in it", file=sys.stderr)
            return 1
        content = found.read()
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(content)
    partial.replace(target)
    print(f"{destination}: {len(content)} bytes, checked")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))

#!/usr/bin/env python3
"""Checks that every ```swift example in a `///` doc comment under Sources/ is compiled: each
of its parts (split at blank lines) must appear verbatim, as consecutive lines at one
indentation, in a file of Tests/EventStreamKitTests/ (which `swift test` builds; most are in
DocCommentExampleTests.swift, which also runs the pure ones) or in an example's sources (which
CI builds: the Hummingbird glue).
Exits 1 and names the examples that are not.

    python3 Tests/DocComments/check.py
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
CORPUS = sorted((ROOT / "Tests" / "EventStreamKitTests").glob("*.swift"))
CORPUS += sorted((ROOT / "Examples").glob("*/Sources/*/*.swift"))
corpus = [path.read_text().split("\n") for path in CORPUS]


def examples():
    """(file, line, [lines]) for each ```swift block in a doc comment."""
    for path in sorted((ROOT / "Sources").rglob("*.swift")):
        lines = path.read_text().split("\n")
        index = 0
        while index < len(lines):
            if re.match(r"^\s*/// ?```swift\s*$", lines[index]):
                start, body = index + 1, []
                index += 1
                while not re.match(r"^\s*/// ?```\s*$", lines[index]):
                    body.append(re.sub(r"^\s*/// ?", "", lines[index]))
                    index += 1
                yield path.relative_to(ROOT), start, body
            index += 1


def parts(body):
    part = []
    for line in body + [""]:
        if line.strip():
            part.append(line)
        elif part:
            yield part
            part = []


def found(part):
    for lines in corpus:
        for start, line in enumerate(lines):
            if not line.endswith(part[0]) or line[: len(line) - len(part[0])].strip():
                continue
            indent = line[: len(line) - len(part[0])]
            if all(start + k < len(lines) and lines[start + k] == (indent + text if text else "")
                   for k, text in enumerate(part)):
                return True
    return False


checked, missing = 0, []
for path, line, body in examples():
    checked += 1
    absent = [part for part in parts(body) if not found(part)]
    if absent:
        missing.append((path, line, absent))
for path, line, absent in missing:
    print(f"{path}:{line}: not compiled by a test:")
    for part in absent:
        print("    " + "\n    ".join(part) + "\n")
print(f"{checked - len(missing)} doc-comment examples compiled, {len(missing)} not")
sys.exit(1 if missing or checked == 0 else 0)

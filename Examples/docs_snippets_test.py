#!/usr/bin/env python3
"""Checks that every Swift snippet in Docs/Embedding.md is a verbatim excerpt of an example's
sources, so that the guide shows code that compiles and runs (test_example.sh builds and tests
it). Exits 1 and names the snippets that are not.

    python3 Examples/docs_snippets_test.py
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sources = "\n".join(path.read_text() for path in sorted((ROOT / "Examples").glob("*/Sources/*/*.swift")))
guide = (ROOT / "Docs" / "Embedding.md").read_text()
snippets = re.findall(r"```swift\n(.*?)```", guide, re.DOTALL)
stale = [snippet for snippet in snippets if snippet not in sources]
for snippet in stale:
    print("not in the examples' sources:\n" + snippet)
print(f"{len(snippets) - len(stale)} passed, {len(stale)} failed")
sys.exit(1 if stale else 0)

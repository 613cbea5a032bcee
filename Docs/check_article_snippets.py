#!/usr/bin/env python3
"""Checks that every Swift block of the DocC article "Per-user notifications" is a verbatim
excerpt of the test file that compiles and runs it, so that the article shows code that
builds and works. Exits 1 and names the blocks that are not (or if the article has none).

    python3 Docs/check_article_snippets.py
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTICLE = ROOT / "Sources" / "EventStreamKit" / "EventStreamKit.docc" / "PerUserNotifications.md"
TEST = ROOT / "Tests" / "EventStreamKitTests" / "PerUserNotificationsArticleTests.swift"

source = TEST.read_text()
snippets = re.findall(r"^```swift\n(.*?)^```", ARTICLE.read_text(), re.DOTALL | re.MULTILINE)
stale = [snippet for snippet in snippets if snippet not in source]
for snippet in stale:
    print(f"not in {TEST.relative_to(ROOT)}:\n" + snippet)
print(f"{ARTICLE.name}: {len(snippets) - len(stale)} passed, {len(stale)} failed")
sys.exit(1 if stale or not snippets else 0)

#!/usr/bin/env bash
# Builds the DocC documentation of both library modules with the toolchain's `docc`, warnings
# as errors, without the swift-docc-plugin package (the package has no dependencies):
#
#   Docs/build-docc.sh
#
# Writes .build-docc/EventStreamKit.doccarchive, .build-docc/EventStreamHTTP.doccarchive and
# the two merged, .build-docc/EventStreamKit-docs.doccarchive, which links between the
# modules work in. To read it:
#
#   python3 -m http.server -b 127.0.0.1 -d .build-docc/EventStreamKit-docs.doccarchive 8000
#
# and open http://127.0.0.1:8000/documentation/eventstreamkit
#
# The guides have one source, Docs/*.md, which GitHub renders: each catalog holds symlinks to
# the guides it shows. docc is given a copy of each catalog with the symlinks resolved and the
# links between guides, written for GitHub (`[Hub](Hub.md#channels)`), rewritten for DocC:
# `<doc:…>` links within a module, paths across the two modules, and the design records under
# Docs/Decisions (not in the catalogs) as their repository paths. A link to anything else fails
# the build, as does a public type that the landing page leaves out of its topic groups.
set -euo pipefail
cd "$(dirname "$0")/.."

out=.build-docc
graphs=$out/symbol-graphs
catalogs=$out/catalogs

echo "-- symbol graphs (public symbols only)"
# The compiler writes them as it builds a module, so they live in the build directory, not
# cleaned: a build with nothing to do emits nothing and leaves the last graphs current.
emitted=$out/build/symbol-graphs
mkdir -p "$emitted"
swift build --target EventStreamHTTP --scratch-path "$out/build" \
  -Xswiftc -emit-symbol-graph \
  -Xswiftc -emit-symbol-graph-dir -Xswiftc "$PWD/$emitted" \
  -Xswiftc -symbol-graph-minimum-access-level -Xswiftc public
# One directory per module, holding that module's graphs only (and those of its extensions
# to other modules' types, Module@Other.symbols.json, if it ever has public ones).
for module in EventStreamKit EventStreamHTTP; do
  rm -rf "${graphs:?}/$module"
  mkdir -p "$graphs/$module"
  if [ ! -f "$emitted/$module.symbols.json" ]; then
    echo "no symbol graph for $module in $emitted: remove $out/build and run again" >&2
    exit 1
  fi
  cp "$emitted/$module".symbols.json "$graphs/$module/"
  cp "$emitted/$module"@*.symbols.json "$graphs/$module/" 2>/dev/null || true
done

echo "-- catalogs: the guides from Docs/, links rewritten for DocC"
rm -rf "$catalogs"
mkdir -p "$catalogs"
python3 - "$catalogs" <<'PY'
import pathlib, re, shutil, sys, unicodedata

ROOT = pathlib.Path.cwd()
OUT = pathlib.Path(sys.argv[1])
MODULES = ["EventStreamKit", "EventStreamHTTP"]

def catalog(module):
    return ROOT / "Sources" / module / f"{module}.docc"

# Each guide in Docs/, by the article (module, name) that a catalog's symlink makes of it.
articles = {}
for module in MODULES:
    for link in sorted(catalog(module).glob("*.md")):
        if link.is_symlink():
            articles[link.resolve()] = (module, link.stem)

def github_slug(heading):
    text = heading.strip().lower().replace("`", "")
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")

def docc_fragment(heading):
    # DocC's urlReadableFragment: whitespace and dashes to one hyphen, punctuation and
    # backticks dropped.
    words = re.split(r"[\s\-\u2013\u2014]+", heading.strip())
    text = "-".join(w for w in words if w)
    return "".join(c for c in text if c == "-" or not (unicodedata.category(c).startswith("P") or c == "`"))

def headings(path):
    result, fenced = {}, False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{2,6} (.*)", line)):
            result[github_slug(match.group(1))] = docc_fragment(match.group(1))
    return result

failures = []

def rewrite(source, text):
    own_module, own_name = articles[source]
    # Code is left alone: fenced blocks and code spans are set aside, then put back.
    kept = []
    def keep(match):
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"
    text = re.sub(r"^```.*?^```[^\n]*$", keep, text, flags=re.M | re.S)
    text = re.sub(r"(`+)(?:(?!\1).)+?\1", keep, text, flags=re.S)

    def link(match):
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:", target):  # https:, mailto:, doc:
            return match.group(0)
        path, _, anchor = target.partition("#")
        destination = (source.parent / path).resolve() if path else source
        plain = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], label).strip("`")
        named_by_path = re.fullmatch(r"\S+(\.md|/)", plain) is not None
        if destination not in articles:
            if destination.is_file() and ROOT in destination.parents:
                # A file of the repository that is no article (a design record): its path.
                path = f"`{destination.relative_to(ROOT)}`"
                return path if named_by_path else f"{label} ({path})"
            failures.append(f"{source.relative_to(ROOT)}: no article or file for the link {match.group(0)}")
            return match.group(0)
        module, name = articles[destination]
        fragment = ""
        if anchor:
            found = headings(destination).get(anchor)
            if found is None:
                failures.append(f"{source.relative_to(ROOT)}: no heading for #{anchor} in {destination.relative_to(ROOT)}")
                return match.group(0)
            fragment = "#" + found
        # A label that only names the file gives way to the article's title.
        if module == own_module:
            return f"<doc:{name}{fragment}>" if named_by_path else f"[{label}](<doc:{name}{fragment}>)"
        # Across modules: a path, which resolves in the merged archive.
        if named_by_path:
            label = destination.read_text().partition("\n")[0].lstrip("# ").replace("`", "")
        return f"[{label}](/documentation/{module.lower()}/{name.lower()}{fragment})"

    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    # DocC shows an article's title as plain text: no code spans in it.
    title, _, rest = text.partition("\n")
    return title.replace("`", "") + "\n" + rest

for module in MODULES:
    target = OUT / f"{module}.docc"
    shutil.copytree(catalog(module), target, symlinks=False)
    for link in sorted(catalog(module).glob("*.md")):
        if link.is_symlink():
            (target / link.name).write_text(rewrite(link.resolve(), link.resolve().read_text()))

for failure in failures:
    print(failure, file=sys.stderr)
sys.exit(1 if failures else 0)
PY

echo "-- docc convert: EventStreamKit"
rm -rf "$out/EventStreamKit.doccarchive" "$out/EventStreamHTTP.doccarchive" "$out/EventStreamKit-docs.doccarchive"
# --enable-experimental-external-link-support writes what EventStreamHTTP's links into this
# module (``/EventStreamKit/EventServer``) are resolved against.
docc convert "$catalogs/EventStreamKit.docc" \
  --additional-symbol-graph-dir "$graphs/EventStreamKit" \
  --warnings-as-errors \
  --fallback-display-name EventStreamKit \
  --fallback-bundle-identifier EventStreamKit \
  --enable-experimental-external-link-support \
  --output-path "$out/EventStreamKit.doccarchive"

echo "-- docc convert: EventStreamHTTP"
docc convert "$catalogs/EventStreamHTTP.docc" \
  --additional-symbol-graph-dir "$graphs/EventStreamHTTP" \
  --warnings-as-errors \
  --fallback-display-name EventStreamHTTP \
  --fallback-bundle-identifier EventStreamHTTP \
  --enable-experimental-external-link-support \
  --dependency "$out/EventStreamKit.doccarchive" \
  --output-path "$out/EventStreamHTTP.doccarchive"

echo "-- docc merge"
docc merge "$out/EventStreamKit.doccarchive" "$out/EventStreamHTTP.doccarchive" \
  --synthesized-landing-page-name EventStreamKit \
  --output-path "$out/EventStreamKit-docs.doccarchive"

echo "-- every public type in a topic group; every path link lands on a page and a heading"
python3 - "$out/EventStreamKit-docs.doccarchive" <<'PY'
import json, pathlib, sys

archive = pathlib.Path(sys.argv[1])
failures = []

for module in ["eventstreamkit", "eventstreamhttp"]:
    page = json.loads((archive / "data" / "documentation" / f"{module}.json").read_text())
    for section in page.get("topicSections", []):
        if section.get("generated"):
            names = [page["references"][i]["title"] for i in section["identifiers"]]
            failures.append(f"{module}: not in a topic group of the landing page ({section['title']}): {', '.join(names)}")

def anchors(node):
    if isinstance(node, dict):
        if isinstance(node.get("anchor"), str):
            yield node["anchor"]
        for value in node.values():
            yield from anchors(value)
    elif isinstance(node, list):
        for value in node:
            yield from anchors(value)

for path in sorted((archive / "data").rglob("*.json")):
    page = json.loads(path.read_text())
    for reference in page.get("references", {}).values():
        url = reference.get("url", "")
        if reference.get("type") != "link" or not url.startswith("/documentation/"):
            continue
        target, _, fragment = url.partition("#")
        target_file = archive / "data" / (target.strip("/") + ".json")
        if not target_file.is_file():
            failures.append(f"{path.relative_to(archive)}: {url}: no such page")
        elif fragment and fragment not in set(anchors(json.loads(target_file.read_text()))):
            failures.append(f"{path.relative_to(archive)}: {url}: no such heading")

for failure in failures:
    print(failure, file=sys.stderr)
sys.exit(1 if failures else 0)
PY

echo "-- done: $out/EventStreamKit-docs.doccarchive (and one archive per module)"

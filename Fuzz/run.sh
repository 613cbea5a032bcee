#!/usr/bin/env bash
# Builds a libFuzzer target from the library's own sources and runs it for a bounded time.
#   Fuzz/run.sh [TARGET] [SECONDS]     TARGET: RequestHead (default), Connection, ResponseHead,
#                                      ClientResponse, EventStream, Encoder, RESP; SECONDS: 60 (default)
# Exits non-zero on a crash or sanitizer report; the reproducer lands in Fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-RequestHead}"
seconds="${2:-60}"
root=../Sources/EventStreamKit
http=../Sources/EventStreamHTTP
case "$target" in
  RequestHead)
    sources=("$root/Transport/HeaderFields.swift" "$root/Transport/HTTPHeadScanner.swift" "$http/HTTPStatus.swift" "$http/HTTPRequestHead.swift" "$http/HTTPRequestHeadParser.swift")
    ;;
  ResponseHead)
    sources=("$root/Transport/HeaderFields.swift" "$root/Transport/HTTPHeadScanner.swift"
             "$root/Client/HTTPResponseHead.swift" "$root/Client/ChunkedBodyDecoder.swift" "$root/Client/EventSourceError.swift")
    ;;
  ClientResponse)
    sources=("$root/Transport/HeaderFields.swift" "$root/Transport/HTTPHeadScanner.swift"
             "$root/Client/HTTPResponseHead.swift" "$root/Client/ChunkedBodyDecoder.swift" "$root/Client/EventSourceError.swift" "$root/Client/HTTPClientResponseDecoder.swift"
             "$root/Wire/EventStreamParser.swift" "$root/Wire/MessageEvent.swift" "$root/Wire/WireError.swift" "$root/Support/LineBreakFinder.swift")
    ;;
  Connection)
    sources=("$root/Transport/HeaderFields.swift" "$root/Transport/HTTPHeadScanner.swift" "$http/HTTPStatus.swift" "$http/HTTPRequestHead.swift" "$http/HTTPRequestHeadParser.swift"
             "$http/HTTPRequestDecoder.swift" "$http/HTTPRequest.swift" "$http/HTTPResponse+Serialization.swift" "$http/HTTPDate.swift")
    ;;
  RESP)
    sources=("$root/Cluster/RESPValue.swift" "$root/Cluster/RESPDecoder.swift")
    ;;
  EventStream|Encoder)
    sources=("$root/Wire/EventStreamParser.swift" "$root/Wire/MessageEvent.swift" "$root/Wire/WireError.swift" "$root/Support/LineBreakFinder.swift"
             "$root/Wire/ServerSentEvent.swift" "$root/Wire/ServerSentEvent+Encoding.swift")
    ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p build crashes "corpus-work/$target"
# The target's files from both modules build as one module here: the server's files lose
# their `import EventStreamKit`, which names the other half of what is compiled with them.
rm -rf "build/src-$target" && mkdir -p "build/src-$target"
copies=()
for source in "${sources[@]}"; do
  copy="build/src-$target/$(basename "$(dirname "$source")")-$(basename "$source")"
  sed -E '/^(public |package |internal )?import EventStreamKit$/d' "$source" >"$copy"
  copies+=("$copy")
done
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name FuzzTarget -package-name EventStreamKitFuzz \
  "$target/main.swift" "${copies[@]}" -o "build/$target"
# corpus-work/ grows with what the fuzzer finds; the committed corpus stays the seed.
# Swift's own crash backtracer would race libFuzzer's handler and can hang the process; the
# outer timeout is a second guard, so that a finding fails fast instead of stalling CI.
SWIFT_BACKTRACE=enable=no timeout --kill-after=10 $((seconds + 120)) \
  "build/$target" -max_total_time="$seconds" -max_len=4096 -artifact_prefix=crashes/ \
  -print_final_stats=1 "corpus-work/$target" "$target/corpus"

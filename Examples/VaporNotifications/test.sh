#!/usr/bin/env bash
# Builds this example, runs it on a free port and checks it with curl -N and httpx-sse.
exec "$(dirname "$0")/../test_example.sh" VaporNotifications

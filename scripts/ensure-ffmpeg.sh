#!/usr/bin/env bash
# The ingest benchmark compares against the ffmpeg command-line tool (Debian package).
set -euo pipefail
if command -v ffmpeg >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
else
  echo "ffmpeg is missing: install Debian's ffmpeg package." >&2
  exit 2
fi

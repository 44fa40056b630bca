#!/usr/bin/env bash
# The annotation page's JavaScript is tested with Node.js' own runner (node --test, no npm
# packages): tests/js/, run by pytest through tests/js/test_node.py.
set -euo pipefail
if ! command -v node >/dev/null; then
  echo "node is missing: the JavaScript tests need Node.js 20 or newer (https://nodejs.org/ or your distribution's nodejs package)." >&2
  exit 2
fi
major=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
if [ "$major" -lt 20 ]; then
  echo "node $(node --version) is too old: the JavaScript tests need Node.js 20 or newer." >&2
  exit 2
fi

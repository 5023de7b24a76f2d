#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser test (tests/integration/test_dashboard_browser.py),
# which drives it through Playwright's Python package (`executable_path`, no browser download: `playwright
# install` needs a CDN). A no-op when chromium is on PATH. Needs root (apt); without root or apt it says so and
# exits 0, and the browser test skips with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "hack/install-chromium.sh: chromium is not installed and apt-get as root is not available" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version

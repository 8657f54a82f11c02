#!/usr/bin/env bash
# What the test suite drives for real, from Debian's packages: redis-server (the tests start a
# throwaway one when no Redis answers at RESOLVD_TEST_REDIS_URL), chromium (the dashboard
# test, headless) and bubblewrap (the sandbox of the metadata-build tests). `make test` runs this first, so a green run means the whole suite ran.
#   bash tests/support/ensure-tools.sh [PACKAGE...]     # default: every package below
# Missing packages are installed with apt-get when this runs as root (as CI does); otherwise it
# stops with status 1, naming the command that installs them.
set -euo pipefail
declare -A provides=([redis-server]=redis-server [chromium]=/usr/bin/chromium [bubblewrap]=bwrap)
packages=("$@")
[ $# -gt 0 ] || packages=(redis-server chromium bubblewrap)
missing=()
for package in "${packages[@]}"; do
  command -v "${provides[$package]}" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -gt 0 ] || exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing what the tests need: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "the tests need ${missing[*]} (not installed): run \`sudo apt-get install -y ${missing[*]}\`" >&2
exit 1

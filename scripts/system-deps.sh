#!/usr/bin/env bash
# Installs the Debian packages a group of targets uses, only where missing.
#   scripts/system-deps.sh test    what `make test` needs
#   scripts/system-deps.sh bench   what the load benchmarks need (nginx, wrk)
set -euo pipefail

group=${1:-test}
need=()
case "$group" in
  test)
    command -v redis-server >/dev/null || need+=(redis-server)  # Redis-backed state tests
    # The dashboard's browser tests: headless Chromium (driven by playwright's Python
    # package, pointed at this executable) and a font to render text with.
    command -v chromium >/dev/null || need+=(chromium)
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
    ;;
  bench)
    command -v nginx >/dev/null || need+=(nginx-light)
    command -v wrk >/dev/null || need+=(wrk)
    ;;
  *) echo "unknown group: $group" >&2; exit 2 ;;
esac

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "missing Debian packages: ${need[*]} (install them as root)" >&2; exit 1; }
  SUDO=sudo
else
  SUDO=
fi
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

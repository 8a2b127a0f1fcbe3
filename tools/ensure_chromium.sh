#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium for the browser tests (tests/e2e/).
# Playwright is told to use it (executable_path) and never downloads a browser of its own.
# Installs it with apt-get when missing; needs root (or passwordless sudo).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "ensure_chromium: $CHROMIUM is present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "ensure_chromium: $CHROMIUM is missing and this is not root (and sudo needs a password)." >&2
    echo "ensure_chromium: run as root: apt-get update && apt-get install -y chromium" >&2
    echo "ensure_chromium: or skip the browser tests by leaving KLAXON_REQUIRE_E2E unset." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available (not Debian/Ubuntu?)." >&2
    echo "ensure_chromium: install chromium with your package manager so that $CHROMIUM exists." >&2
    exit 1
fi

echo "ensure_chromium: $CHROMIUM is missing; running: ${SUDO[*]:-} apt-get update"
if ! "${SUDO[@]}" apt-get update; then
    echo "ensure_chromium: apt-get update failed (network? apt sources?); chromium not installed." >&2
    exit 1
fi
echo "ensure_chromium: running: ${SUDO[*]:-} apt-get install -y chromium"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then
    echo "ensure_chromium: apt-get install -y chromium failed; see the output above." >&2
    exit 1
fi

if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure_chromium: chromium was installed but $CHROMIUM does not exist." >&2
    exit 1
fi
echo "ensure_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

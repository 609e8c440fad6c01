#!/bin/sh
# Installs Debian's chromium for the browser tests (tests/e2e), plus emoji and CJK fonts so
# the screenshots show non-Latin binding messages as a phone would. Idempotent. A browser is
# never downloaded through Playwright (`playwright install` is not used in this project).
set -eu

CHROMIUM=/usr/bin/chromium
PACKAGES="chromium fonts-noto-color-emoji fonts-wqy-microhei"

installed() {
    [ -x "$CHROMIUM" ] || return 1
    for package in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || return 1
    done
}

if installed; then
    echo "chromium is installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $CHROMIUM (or its fonts) is missing and apt-get is not available." >&2
    echo "Install Debian's packages by hand: $PACKAGES" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "error: installing chromium needs root (or sudo): apt-get install -y $PACKAGES" >&2
        exit 1
    fi
fi

echo "installing Debian's $PACKAGES with apt-get ..."
# shellcheck disable=SC2086 # the package list is meant to split
if ! $SUDO apt-get update -q \
    || ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $PACKAGES; then
    echo "error: apt-get could not install $PACKAGES (no network or no package source?)." >&2
    exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "error: the chromium package was installed but $CHROMIUM does not exist." >&2
    exit 1
fi
echo "chromium is installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

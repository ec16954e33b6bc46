#!/usr/bin/env bash
# Debian libraries that Qt (PySide6), OpenCV and PyAV load at run time.
# Installs only what is missing, and only when we are root with apt-get; otherwise
# it lists what is missing so the user can install it.
set -u
libs=(libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon-x11-0
      libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
      libxcb-render-util0 libxcb-image0)
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian: nothing to do here
missing=()
for p in "${libs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian libraries for Qt: ${missing[*]}" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || echo "warning: could not install ${missing[*]}; the GUI may not start" >&2
else
    echo "note: these Debian libraries are missing (the GUI needs them): ${missing[*]}" >&2
    echo "      install them with: sudo apt-get install ${missing[*]}" >&2
fi
exit 0

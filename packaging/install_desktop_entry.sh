#!/usr/bin/env bash
# Adds TransPose Studio to the desktop's application menu for the current user:
# the icon into ~/.local/share/icons/hicolor, the .desktop file into
# ~/.local/share/applications (Exec = this bundle's program, by absolute path).
#
#   dist/TransPoseStudio/install_desktop_entry.sh           # from the built bundle
#   packaging/install_desktop_entry.sh dist/TransPoseStudio  # from the source checkout
#
# PREFIX (default ~/.local) chooses another data folder, e.g. PREFIX=/usr/local as root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="$(cd "${1:-$here}" && pwd)"
program="$bundle/TransPoseStudio"
[ -x "$program" ] || { echo "error: $program: not found; build it with make package" >&2; exit 1; }
desktop="$bundle/transpose-studio.desktop"
[ -f "$desktop" ] || desktop="$here/transpose-studio.desktop"
icons="$bundle/_internal/resources/icons"
[ -d "$icons" ] || icons="$here/../resources/icons"
prefix="${PREFIX:-$HOME/.local}"
for size in 256 128 64 48 32; do
    src="$icons/transpose-studio-$size.png"
    [ -f "$src" ] || continue
    install -D -m 644 "$src" "$prefix/share/icons/hicolor/${size}x${size}/apps/transpose-studio.png"
done
mkdir -p "$prefix/share/applications"
sed -e "s|^Exec=[^ ]*|Exec=\"$program\"|" -e "s|^TryExec=.*|TryExec=$program|" "$desktop" \
    > "$prefix/share/applications/transpose-studio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
echo "installed $prefix/share/applications/transpose-studio.desktop -> $program"

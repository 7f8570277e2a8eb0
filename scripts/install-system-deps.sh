#!/usr/bin/env bash
# Install the Debian packages Legato needs, only those missing (quick when none are).
# avahi-daemon (the host's mDNS responder on Raspberry Pi OS; Legato publishes through it over
# D-Bus) and avahi-utils, dbus and iproute2 for the tests that run it in network namespaces.
# nodejs and npm run MicroPython's WebAssembly port for the panel firmware's tests (hardware/mcu);
# they are looked for as commands, since a node from elsewhere (NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package) serves as well.
# The tests keep mDNS on loopback, which avahi ignores, so a running avahi-daemon leaves them be.
set -euo pipefail
packages=(gcc libc6-dev mtools dosfstools mosquitto mosquitto-clients dnsutils avahi-daemon avahi-utils dbus iproute2 libasound2-dev libmpv2 mpv libvorbisfile3 vorbis-tools sox libsox-fmt-all ffmpeg faketime chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

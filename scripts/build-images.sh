#!/usr/bin/env bash
# Build the systemd-capable Debian base images that Molecule and the demo use.
# No container registry is needed: the images are made with debootstrap from
# the Debian mirror this machine already uses, then `docker import`ed.
#
# Usage: scripts/build-images.sh [bookworm] [trixie]     (default: both)
# Environment:
#   VMAIL_IMAGE_DEBIAN12 / VMAIL_IMAGE_DEBIAN13  image names (default vmail/debian:12, vmail/debian:13);
#     when an image of that name already exists it is kept (use your own image this way).
#   VMAIL_DEBIAN_MIRROR   mirror URL (default: the first deb.debian.org-style URI in /etc/apt/sources*)
#   VMAIL_REBUILD_IMAGES=1  rebuild even when the image exists.
set -euo pipefail
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

mirror="${VMAIL_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  files=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    mirror=$(grep -hoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+' $files \
      | awk '{print $NF}' | grep -E '/debian/?$' | grep -v security | head -n 1 || true)
  fi
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

for suite in "${suites[@]}"; do
  case "$suite" in
    bookworm) image="${VMAIL_IMAGE_DEBIAN12:-vmail/debian:12}" ;;
    trixie) image="${VMAIL_IMAGE_DEBIAN13:-vmail/debian:13}" ;;
    *) echo "unknown suite $suite (bookworm or trixie)" >&2; exit 2 ;;
  esac
  if [ "${VMAIL_REBUILD_IMAGES:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "image $image exists, kept"
    continue
  fi
  dir=$(mktemp -d "/var/tmp/vmail-rootfs-$suite.XXXXXX")
  echo "building $image from $suite ($mirror) in $dir"
  # debootstrap needs the trixie keyring; debian-archive-keyring on bookworm has it.
  debootstrap --variant=minbase --include=python3,systemd,systemd-sysv,iproute2,ca-certificates,sudo \
    "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || { tail -n 30 "$dir.log" >&2; exit 1; }
  # Same mirror inside the image, security updates included.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" >"$dir/etc/apt/sources.list"
  rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
  # Containers have no console to get a login prompt on.
  rm -f "$dir/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
  tar -C "$dir" -c . | docker import -c 'CMD ["/sbin/init"]' - "$image" >/dev/null
  rm -rf "$dir" "$dir.log"
  echo "built $image"
done

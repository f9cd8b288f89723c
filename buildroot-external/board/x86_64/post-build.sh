#!/bin/sh
# Buildroot post-build for the x86_64 box: what scripts/build-image does to the Debian
# root after laying rootfs-overlay/ over it. Keep the two in step.
#   $1: the target directory.
# Environment: PBX_RAUC_KEYRING, the certificate (chain) bundles must be signed with
# (docs/updates.md); the build fails without it.
set -eu
TARGET=$1
BOARD_DIR=$(dirname "$0")
: "${PBX_RAUC_KEYRING:?set PBX_RAUC_KEYRING to the update signing certificate (docs/updates.md)}"
install -D -m 0644 "$PBX_RAUC_KEYRING" "$TARGET/etc/rauc/keyring.pem"
echo "${PBX_BOARD:-x86-1nic}" > "$TARGET/etc/pbx/board"
VERSION=$(sed -n 's/^PBXD_VERSION = //p' "$BOARD_DIR/../../package/pbxd/pbxd.mk")
printf 'PBX firmware %s\nBoard %s, built %s\n' "$VERSION" "${PBX_BOARD:-x86-1nic}" \
    "$(date -u +%Y-%m-%dT%H:%MZ)" > "$TARGET/etc/pbx-release"
mkdir -p "$TARGET/data" "$TARGET/boot/efi"
ln -sf bzImage "$TARGET/boot/vmlinuz"
# Services as in the test image: enable ours, mask every getty.
wants() { mkdir -p "$TARGET/etc/systemd/system/$1"; ln -sf "$2" "$TARGET/etc/systemd/system/$1/$3"; }
wants multi-user.target.wants /etc/systemd/system/pbxd.service pbxd.service
wants multi-user.target.wants /etc/systemd/system/pbx-boot.service pbx-boot.service
wants getty.target.wants /etc/systemd/system/pbx-console@.service pbx-console@ttyS0.service
wants getty.target.wants /etc/systemd/system/pbx-console@.service pbx-console@tty1.service
for u in getty@.service serial-getty@.service autovt@.service console-getty.service; do
    ln -sf /dev/null "$TARGET/etc/systemd/system/$u"
done
ln -sf /bin/busybox "$TARGET/sbin/udhcpc"

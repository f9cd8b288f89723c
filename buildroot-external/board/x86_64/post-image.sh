#!/bin/sh
# Buildroot post-image for the x86_64 box: the boot partition (GRUB's EFI image from
# the grub2 package, our grub.cfg and a fresh grubenv), the disk (genimage.cfg) and the
# signed RAUC bundle of the root file system.
# Environment: PBX_RAUC_CERT and PBX_RAUC_KEY (a PKCS#11 URI for a key in an HSM, or a
# file) sign the bundle (docs/updates.md).
set -eu
BOARD_DIR=$(dirname "$0")
: "${PBX_RAUC_CERT:?set PBX_RAUC_CERT (docs/updates.md)}"
: "${PBX_RAUC_KEY:?set PBX_RAUC_KEY (docs/updates.md)}"
EFI=$BINARIES_DIR/efi-part/EFI/BOOT
install -m 0644 "$BOARD_DIR/grub.cfg" "$EFI/grub.cfg"
rm -f "$EFI/grubenv"
"$HOST_DIR/bin/grub-editenv" "$EFI/grubenv" create
"$HOST_DIR/bin/grub-editenv" "$EFI/grubenv" set ORDER="A B" A_OK=1 B_OK=1 A_TRY=0 B_TRY=0
GENIMAGE_TMP=$BUILD_DIR/genimage.tmp
rm -rf "$GENIMAGE_TMP"
genimage --rootpath "$TARGET_DIR" --tmppath "$GENIMAGE_TMP" \
    --inputpath "$BINARIES_DIR/efi-part" --outputpath "$BINARIES_DIR" \
    --config "$BOARD_DIR/genimage.cfg"
# The bundle: the same script and manifest as the test image's (scripts/make-bundle);
# Buildroot puts its host tools (rauc, mksquashfs) first on PATH.
VERSION=$(sed -n 's/^PBX firmware //p' "$TARGET_DIR/etc/pbx-release")
"$BR2_EXTERNAL_PBX_PATH/../scripts/make-bundle" "$BINARIES_DIR/rootfs.ext4" \
    "$BINARIES_DIR/update.raucb" --version "$VERSION" --compatible pbx-x86_64 \
    --cert "$PBX_RAUC_CERT" --key "$PBX_RAUC_KEY"

#!/bin/sh
# Buildroot post-image for the Raspberry Pi 4: config.txt starts U-Boot, genimage makes
# the SD card, and the root is signed as a bundle for pbx-rpi4.
set -eu
BOARD_DIR=$(dirname "$0")
: "${PBX_RAUC_CERT:?set PBX_RAUC_CERT (docs/updates.md)}"
: "${PBX_RAUC_KEY:?set PBX_RAUC_KEY (docs/updates.md)}"
cat > "$BINARIES_DIR/rpi-firmware/config.txt" <<CFG
arm_64bit=1
kernel=u-boot.bin
enable_uart=1
disable_overscan=1
CFG
GENIMAGE_TMP=$BUILD_DIR/genimage.tmp
rm -rf "$GENIMAGE_TMP"
genimage --rootpath "$TARGET_DIR" --tmppath "$GENIMAGE_TMP" \
    --inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" --config "$BOARD_DIR/genimage.cfg"
# The bundle: the same script and manifest as the test image's (scripts/make-bundle);
# Buildroot puts its host tools (rauc, mksquashfs) first on PATH.
VERSION=$(sed -n 's/^PBX firmware //p' "$TARGET_DIR/etc/pbx-release")
"$BR2_EXTERNAL_PBX_PATH/../scripts/make-bundle" "$BINARIES_DIR/rootfs.ext4" \
    "$BINARIES_DIR/update.raucb" --version "$VERSION" --compatible pbx-rpi4 \
    --cert "$PBX_RAUC_CERT" --key "$PBX_RAUC_KEY"

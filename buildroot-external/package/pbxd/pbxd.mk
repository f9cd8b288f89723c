################################################################################
#
# pbxd
#
################################################################################

# The firmware's own repository, at the tag of the release. Buildroot's cargo
# infrastructure runs `cargo vendor` after the download: the crates of Cargo.lock go
# into the source tarball it keeps in DL_DIR (its hash covers them), and the build
# runs `cargo build --offline --locked`. For a local checkout see docs/building.md
# (PBXD_OVERRIDE_SRCDIR plus `cargo vendor`).
PBXD_VERSION = 0.1.0
PBXD_SITE = https://github.com/pbx-appliance/firmware.git
PBXD_SITE_METHOD = git
PBXD_LICENSE = GPL-3.0-or-later
PBXD_DEPENDENCIES = dahdi-linux host-clang alsa-lib host-pkgconf libsrtp host-cmake

PBXD_CARGO_BUILD_OPTS = -p pbxd -p pbxctl -p console
PBXD_CARGO_ENV = \
	DAHDI_INCLUDE_DIR=$(STAGING_DIR)/usr/include \
	SRTP2_INCLUDE_DIR=$(STAGING_DIR)/usr/include \
	LIBCLANG_PATH=$(HOST_DIR)/lib \
	BINDGEN_EXTRA_CLANG_ARGS="--sysroot=$(STAGING_DIR)"

PBXD_BIN_DIR = $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)

# A workspace of several crates: install its three programs (the default
# `cargo install --path .` takes one crate), then the overlay the test image shares.
define PBXD_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(PBXD_BIN_DIR)/pbxd $(TARGET_DIR)/usr/bin/pbxd
	$(INSTALL) -D -m 0755 $(PBXD_BIN_DIR)/pbxctl $(TARGET_DIR)/usr/bin/pbxctl
	$(INSTALL) -D -m 0755 $(PBXD_BIN_DIR)/pbx-console $(TARGET_DIR)/usr/bin/pbx-console
endef

$(eval $(cargo-package))

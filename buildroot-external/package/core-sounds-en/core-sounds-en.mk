################################################################################
#
# core-sounds-en
#
################################################################################

# Asterisk's core sounds 1.6.1, English, WAV set: fetched as Debian's binary package of
# that upstream release (the same files the test image installs), whose SHA-256 is the
# one in Debian's signed package index (bookworm main, Packages). Only the prompts are
# installed.
CORE_SOUNDS_EN_VERSION = 1.6.1
CORE_SOUNDS_EN_SOURCE = asterisk-core-sounds-en-wav_$(CORE_SOUNDS_EN_VERSION)-1_all.deb
CORE_SOUNDS_EN_SITE = https://deb.debian.org/debian/pool/main/a/asterisk-core-sounds
CORE_SOUNDS_EN_LICENSE = CC-BY-SA-3.0
CORE_SOUNDS_EN_LICENSE_FILES = usr/share/doc/asterisk-core-sounds-en-wav/copyright

define CORE_SOUNDS_EN_EXTRACT_CMDS
	cd $(@D) && $(TARGET_AR) x $(CORE_SOUNDS_EN_DL_DIR)/$(CORE_SOUNDS_EN_SOURCE) data.tar.xz
	$(XZCAT) $(@D)/data.tar.xz | $(TAR) -C $(@D) $(TAR_OPTIONS) -
endef

define CORE_SOUNDS_EN_INSTALL_TARGET_CMDS
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/usr/share/asterisk/sounds
	cp -a $(@D)/usr/share/asterisk/sounds/en_US_f_Allison $(TARGET_DIR)/usr/share/asterisk/sounds/
	ln -sfn en_US_f_Allison $(TARGET_DIR)/usr/share/asterisk/sounds/en
endef

$(eval $(generic-package))

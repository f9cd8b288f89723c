################################################################################
#
# moh-opsound
#
################################################################################

# Debian's orig tarball of asterisk-moh-opsound 2.03 holds the upstream WAV, GSM and
# G.722 sets; its SHA-256 is the one Debian's signed .dsc gives. Only the WAV set is
# installed: the same files as Debian's asterisk-moh-opsound-wav in the test image.
MOH_OPSOUND_VERSION = 2.03
MOH_OPSOUND_SOURCE = asterisk-moh-opsound_$(MOH_OPSOUND_VERSION).orig.tar.gz
MOH_OPSOUND_SITE = https://deb.debian.org/debian/pool/main/a/asterisk-moh-opsound
MOH_OPSOUND_LICENSE = CC-BY-SA-3.0
MOH_OPSOUND_LICENSE_FILES = wav/LICENSE-asterisk-moh-opsound-wav

define MOH_OPSOUND_INSTALL_TARGET_CMDS
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/usr/share/asterisk/moh
	$(INSTALL) -m 0644 $(@D)/wav/*.wav $(TARGET_DIR)/usr/share/asterisk/moh/
endef

$(eval $(generic-package))

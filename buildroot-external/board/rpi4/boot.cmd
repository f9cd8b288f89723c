# U-Boot boot script: RAUC's boot counting for the Pi (the x86 box does it in GRUB).
# BOOT_ORDER lists the slots to try; BOOT_<slot>_LEFT counts the tries left, which
# `rauc status mark-good` (pbxd, once healthy) sets back to 3.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv bootpart
setenv raucslot
for BOOT_SLOT in "${BOOT_ORDER}"; do
  if test "x${bootpart}" != "x"; then
    # already chosen
  elif test "x${BOOT_SLOT}" = "xA"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv bootpart /dev/mmcblk0p2
      setenv partnum 2
      setenv raucslot A
    fi
  elif test "x${BOOT_SLOT}" = "xB"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv bootpart /dev/mmcblk0p3
      setenv partnum 3
      setenv raucslot B
    fi
  fi
done
if test -n "${bootpart}"; then
  saveenv
else
  echo "No slot left to try: resetting the counters and rebooting"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  saveenv
  reset
fi
setenv bootargs "console=tty1 console=ttyAMA0,115200 root=${bootpart} rootwait rauc.slot=${raucslot} quiet loglevel=3 systemd.show_status=false panic=10"
load mmc 0:${partnum} ${kernel_addr_r} /boot/Image
booti ${kernel_addr_r} - ${fdt_addr}

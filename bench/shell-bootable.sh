#!/usr/bin/env bash
# The baseline for bench/disk-image: the bootable image built by a shell pipeline of standard tools,
# doing what profiles/debian-bootable.yaml asks (same base image, same packages, same layout):
# docker run apt → docker export → tar -x → sgdisk → mkfs.ext4 -d / mkfs.vfat + mtools → grub → qemu-img.
# usage: shell-bootable.sh BASE_IMAGE WORKDIR "PACKAGES…"
set -euo pipefail
BASE=$1 W=$2 PACKAGES=$3
mkdir -p "$W"; cd "$W"
CT=bareon-bench-shell-$$
trap 'docker rm -f $CT >/dev/null 2>&1 || true' EXIT

docker run --name "$CT" "$BASE" /bin/sh -ec "
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  mkdir -p /etc/initramfs-tools/conf.d; echo FSTYPE=ext4 > /etc/initramfs-tools/conf.d/fstype
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends $PACKAGES && apt-get clean
  useradd -m -s /bin/bash admin; echo 'admin ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-admin
  ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime; echo LANG=C.UTF-8 > /etc/default/locale
  systemctl enable ssh; echo 'built by bareon' > /etc/built-by
  rm -f /usr/sbin/policy-rc.d" >/dev/null

rm -rf stage; mkdir stage
docker export "$CT" | tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C stage
rm -rf stage/.dockerenv stage/var/lib/apt/lists/*
echo bareon-vm > stage/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tbareon-vm\n' > stage/etc/hosts
: > stage/etc/resolv.conf

KB=$(du -s -B1 --apparent-size stage | cut -f1)
ROOT_MIB=$(( KB * 13 / 10 / 1048576 + 1 ))
SIZE_MIB=$(( ROOT_MIB + 1 + 256 + 2 ))
rm -f disk.img; truncate -s ${SIZE_MIB}M disk.img
sgdisk -Z -n1:2048:+1M -t1:EF02 -n2:0:+256M -t2:EF00 -n3:0:0 -t3:8304 disk.img >/dev/null
ESP_START=4096; ROOT_START=$(( (1 + 1 + 256) * 2048 ))
ROOT_KB=$(( (SIZE_MIB - 1 - 1 - 256 - 1) * 1024 ))
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$ROOT_UUID" > stage/etc/fstab
KVER=$(ls stage/boot | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
mkdir -p stage/boot/grub
cp -a stage/usr/lib/grub/i386-pc stage/usr/lib/grub/x86_64-efi stage/boot/grub/
cat > stage/boot/grub/grub.cfg <<EOT
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian' { linux /boot/vmlinuz-$KVER root=UUID=$ROOT_UUID ro console=ttyS0,115200n8
  initrd /boot/initrd.img-$KVER }
EOT
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n' "$ROOT_UUID" > early.cfg
grub-mkimage -d stage/usr/lib/grub/i386-pc -O i386-pc -o core.img -c early.cfg -p /boot/grub biosdisk part_gpt ext2 search search_fs_uuid
grub-mkimage -d stage/usr/lib/grub/x86_64-efi -O x86_64-efi -o BOOTX64.EFI -c early.cfg -p /boot/grub part_gpt ext2 fat search search_fs_uuid
mkfs.ext4 -q -F -t ext4 -L root -U "$ROOT_UUID" -d stage -E offset=$((ROOT_START * 512)) disk.img "${ROOT_KB}k"
mkfs.vfat -F 32 -s 1 -n EFI --offset=$ESP_START disk.img $((256 * 1024)) >/dev/null 2>&1
MTOOLS_SKIP_CHECK=1 mmd -i disk.img@@$((ESP_START * 512)) ::/EFI ::/EFI/BOOT
MTOOLS_SKIP_CHECK=1 mcopy -i disk.img@@$((ESP_START * 512)) BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
le64() { printf "$(printf '%016x' "$2" | sed 's/../&\n/g' | tac | tr -d '\n' | sed 's/../\\x&/g')" | dd of=disk.img bs=1 seek="$1" conv=notrunc status=none; }
dd if=stage/usr/lib/grub/i386-pc/boot.img of=disk.img bs=440 count=1 conv=notrunc status=none
le64 $((0x5C)) 2048; printf '\x90\x90' | dd of=disk.img bs=1 seek=$((0x66)) conv=notrunc status=none
dd if=core.img of=disk.img bs=512 seek=2048 conv=notrunc status=none
le64 $((2048 * 512 + 0x1F4)) 2049
e2fsck -fn "disk.img?offset=$((ROOT_START * 512))" >/dev/null
qemu-img convert -O qcow2 -o compat=1.1 disk.img disk.qcow2
rm -rf stage

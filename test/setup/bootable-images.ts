import { execa } from 'execa';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage, REPO } from '../helpers/cli.js';
import { TEST_EPOCH } from '../helpers/images.js';

/**
 * Where the e2e tier's shared images are built. Kept between runs and clones (BAREON_TEST_IMAGES
 * moves it): a tarball is reused only when its root filesystem image, its options and bareon's
 * compiled code are all unchanged (disk images with unseeded layouts are made again, with new
 * UUIDs), and the step cache makes the rest quick.
 */
export const IMAGES_DIR = process.env.BAREON_TEST_IMAGES ?? '/var/cache/bareon-test-images';

declare module 'vitest' {
  export interface ProvidedContext {
    bootableImages: {
      dir: string;
      gpt: string;
      gptProfile: string;
      msdos: string;
      tar: string;
      cloud: string;
      buildSeconds: number;
      /** Secure Boot: the GPT image with unsigned GRUB, and a unified kernel image signed and not. */
      secureBoot: { unsigned: string; uki: string; ukiUnsigned: string };
    };
  }
}

async function buildProfile(profile: string, out: string, env: Record<string, string> = {}): Promise<number> {
  const started = Date.now();
  await buildImage(profile, out, { env });
  return (Date.now() - started) / 1000;
}

/**
 * Builds the images the e2e tests boot and inspect, once per run: profiles/debian-bootable.yaml
 * (GPT, BIOS + UEFI, qcow2 + raw) on its default layout with a seed and with SOURCE_DATE_EPOCH, so
 * that disk-image.test.ts can build it again and compare; the same profile on layouts/bios-msdos.yaml
 * (qcow2); its root filesystem as a tar.zst; and profiles/debian-cloud.yaml (qcow2, with cloud-init).
 */
export default async function buildBootableImages(project: TestProject): Promise<void> {
  await mkdir(IMAGES_DIR, { recursive: true });
  const text = await readFile(path.join(REPO, 'profiles/debian-bootable.yaml'), 'utf8');
  const seededLayout = path.join(IMAGES_DIR, 'bios-uefi-gpt-seeded.yaml');
  await writeFile(
    seededLayout,
    (await readFile(path.join(REPO, 'profiles/layouts/bios-uefi-gpt.yaml'), 'utf8')).replace(
      /^disks:/m,
      'seed: reproducible\ndisks:',
    ),
  );
  const gptProfile = path.join(IMAGES_DIR, 'debian-bootable.yaml');
  await writeFile(gptProfile, `${text}layout: ${seededLayout}\n`);
  const gptOut = path.join(IMAGES_DIR, 'gpt');
  const buildSeconds = await buildProfile(gptProfile, gptOut, { SOURCE_DATE_EPOCH: String(TEST_EPOCH) });

  const msdosProfile = path.join(IMAGES_DIR, 'debian-msdos.yaml');
  const msdosText = text
    .replace(/^name: .*$/m, 'name: debian-msdos')
    .replace(/^outputs: .*$/m, `outputs: [qcow2]\nlayout: ${path.join(REPO, 'profiles/layouts/bios-msdos.yaml')}`);
  await writeFile(msdosProfile, msdosText);
  const msdosOut = path.join(IMAGES_DIR, 'msdos');
  await buildProfile(msdosProfile, msdosOut);

  // the same root filesystem as a tarball, for deploys onto a layout (every step is a cache hit)
  const tarProfile = path.join(IMAGES_DIR, 'debian-bootable-tar.yaml');
  await writeFile(
    tarProfile,
    text.replace(/^name: .*$/m, 'name: debian-bootable-tar').replace(/^outputs: .*$/m, 'outputs: [tar.zst]'),
  );
  const tarOut = path.join(IMAGES_DIR, 'tar');
  await buildProfile(tarProfile, tarOut);

  // with cloud-init, for the config drive boots
  const cloudOut = path.join(IMAGES_DIR, 'cloud');
  await buildProfile(path.join(REPO, 'profiles/debian-cloud.yaml'), cloudOut);

  const secureBoot = await buildSecureBootImages(text, seededLayout);

  project.provide('bootableImages', {
    dir: IMAGES_DIR,
    gpt: gptOut,
    gptProfile,
    msdos: msdosOut,
    tar: tarOut,
    cloud: cloudOut,
    buildSeconds,
    secureBoot,
  });
}

/**
 * The Secure Boot test images, from the same root filesystem steps as the GPT image: that image with
 * GRUB left unsigned (bootloader.secure_boot: false), the negative control for the signed chain; and
 * a unified kernel image (with systemd-boot-efi, a package step more) signed with the snakeoil db key
 * of Debian's ovmf package, and the same unsigned.
 */
async function buildSecureBootImages(
  text: string,
  seededLayout: string,
): Promise<{ unsigned: string; uki: string; ukiUnsigned: string }> {
  const dir = path.join(IMAGES_DIR, 'secure-boot');
  await mkdir(dir, { recursive: true });
  const unsignedLayout = path.join(dir, 'layout-unsigned-grub.yaml');
  await writeFile(
    unsignedLayout,
    (await readFile(seededLayout, 'utf8')).replace(/^bootloader: \{(.*)\}$/m, 'bootloader: {$1, secure_boot: false}'),
  );
  const profile = (name: string, layout: string, packages = '') =>
    text
      .replace(/^name: .*$/m, `name: ${name}`)
      .replace(/^outputs: .*$/m, `outputs: [qcow2]\nlayout: ${layout}`)
      .replace(/^packages: \[/m, `packages: [${packages}`);
  const build = async (name: string, layout: string, packages?: string) => {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, profile(name, layout, packages));
    await buildProfile(file, path.join(dir, name));
    return path.join(dir, name, `${name}.qcow2`);
  };
  // the snakeoil key ships encrypted (passphrase "snakeoil"); sbsign takes a plain PEM key
  await execa('openssl', [
    'pkey',
    '-in',
    '/usr/share/ovmf/PkKek-1-snakeoil.key',
    '-passin',
    'pass:snakeoil',
    '-out',
    path.join(dir, 'db.key'),
  ]);
  await copyFile('/usr/share/ovmf/PkKek-1-snakeoil.pem', path.join(dir, 'db.crt'));
  const ukiLayout = (sign: boolean) =>
    [
      'disks:',
      '  - id: root',
      '    table: gpt',
      '    size: auto',
      '    partitions:',
      '      - {type: esp, size: 256MiB, fs: {type: vfat, label: EFI}, mount: /boot/efi}',
      '      - {type: linux, size: remaining, fs: {type: ext4, label: root}, mount: /}',
      `bootloader: {kind: [uki], cmdline: "console=ttyS0,115200n8"${sign ? ', sign: {key: db.key, cert: db.crt}' : ''}}`,
      '',
    ].join('\n');
  await writeFile(path.join(dir, 'layout-uki-signed.yaml'), ukiLayout(true));
  await writeFile(path.join(dir, 'layout-uki-unsigned.yaml'), ukiLayout(false));
  return {
    unsigned: await build('unsigned-grub', unsignedLayout),
    uki: await build('uki', path.join(dir, 'layout-uki-signed.yaml'), 'systemd-boot-efi, '),
    ukiUnsigned: await build('uki-unsigned', path.join(dir, 'layout-uki-unsigned.yaml'), 'systemd-boot-efi, '),
  };
}

import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  canonicalJson,
  checkSigningKey,
  definePlugin,
  type Manifest,
  removeStaleSignature,
  sha256,
  signFile,
  ValidationError,
} from 'bareon/plugin';

/**
 * Writes `<outDir>/<name>.manifest.json`: artifacts with sha256, the profile digest, base image and
 * packages; with `--sign KEY`, its SSH signature `<name>.manifest.json.sig` beside it.
 */
export default definePlugin({
  reads: ['profile', 'outDir', 'rootfs', 'artifacts', 'build', 'epoch', 'signing'],
  writes: ['artifacts'],
  summary: 'writes <name>.manifest.json: artifacts, checksums, base image and installed packages; signs it with --sign',
  pipelines: { build: {} },
  async validate(objects) {
    if (!objects.profile || !objects.outDir)
      throw new ValidationError('manifest: needs a profile and an output directory');
    if (objects.signing) await checkSigningKey(objects.signing.key);
  },
  async run(ctx) {
    const { profile, outDir, rootfs, artifacts, build } = ctx.objects;
    // the schemas and the container API load when a build writes its manifest, not with every run that reads this action's place
    const [{ ManifestSchema }, { recordDate }] = await Promise.all([import('bareon'), import('bareon/containers')]);
    const manifest: Manifest = ManifestSchema.parse({
      manifest_version: 1,
      name: profile!.name,
      created: recordDate(ctx.objects.epoch),
      epoch: ctx.objects.epoch,
      profile_digest: sha256(canonicalJson(profile)),
      base_image: build?.baseImage ?? '',
      image: rootfs?.image ?? '',
      builder: build?.builder ?? profile!.builder,
      artifacts,
      packages: rootfs?.packages ?? [],
      hygiene: profile!.hygiene && {
        kept: Object.entries(profile!.hygiene)
          .filter(([, v]) => v === 'keep')
          .map(([k]) => k),
        removed: rootfs?.removed ?? [],
      },
      steps:
        build?.steps.map((s) => ({
          title: s.title,
          key: s.key,
          cached: s.cached,
          seconds: Math.round(s.ms / 100) / 10,
        })) ?? [],
    });
    const file = path.join(outDir!, `${profile!.name}.manifest.json`);
    await mkdir(outDir!, { recursive: true });
    await removeStaleSignature(file);
    await writeFile(`${file}.partial`, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(`${file}.partial`, file);
    const signed = ctx.objects.signing && (await signFile(file, ctx.objects.signing.key, ctx.signal));
    ctx.setTitle(
      `manifest ${path.basename(file)}: ${artifacts.length} artifact(s), ${manifest.packages.length} packages${signed ? `, signed (${path.basename(signed)})` : ''}`,
    );
  },
});

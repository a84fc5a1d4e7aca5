import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256, ValidationError, VERSION, definePlugin } from 'bareon/plugin';

/**
 * Writes `<outDir>/<name>.cdx.json`, a CycloneDX 1.6 SBOM of the built image: its installed packages
 * (from the package database, read from the image without running it) and the build's artifacts
 * with their sha256. It runs after the exporters and before the manifest, which lists and pins it.
 */
export default definePlugin({
  reads: ['profile', 'outDir', 'rootfs', 'artifacts', 'epoch'],
  writes: ['artifacts'],
  summary: 'writes <name>.cdx.json: a CycloneDX SBOM of the image’s packages and the build’s artifacts',
  pipelines: { build: { before: ['manifest'] } },
  validate(objects) {
    if (!objects.profile || !objects.outDir) throw new ValidationError('sbom: needs a profile and an output directory');
  },
  async run(ctx) {
    const { profile, outDir, rootfs, artifacts, epoch } = ctx.objects;
    // the container API and the CycloneDX library load when a build writes its SBOM
    const { DockerEngine, readImagePackages, cycloneDxSbom, SBOM_FORMAT } = await import('bareon/containers');
    const contents = rootfs?.image
      ? await readImagePackages(await DockerEngine.forRun(ctx.runId, ctx.cleanup), rootfs.image)
      : { packages: (rootfs?.packages ?? []).map((p) => ({ ...p, licenses: [] })) };
    const json = await cycloneDxSbom({
      name: profile!.name,
      epoch,
      ...contents,
      artifacts: [...artifacts],
      tool: { name: 'bareon', version: VERSION },
    });
    const uri = `${profile!.name}.${SBOM_FORMAT}`;
    const file = path.join(outDir!, uri);
    await mkdir(outDir!, { recursive: true });
    await writeFile(`${file}.partial`, json);
    await rename(`${file}.partial`, file);
    artifacts.push({ uri, format: SBOM_FORMAT, sha256: sha256(json), size: Buffer.byteLength(json) });
    const licensed = contents.packages.filter((p) => p.licenses.length).length;
    ctx.setTitle(`sbom ${uri}: ${contents.packages.length} packages (${licensed} with licenses), CycloneDX 1.6`);
  },
});

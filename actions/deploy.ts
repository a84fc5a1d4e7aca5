import { pluginSubtask, definePlugin, ValidationError, type Objects } from 'bareon/plugin';

/** The deployer plugin for what the source holds. */
const DEPLOYERS = { disk: 'disk-image', rootfs: 'rootfs-tar', fs: 'fs-image' } as const;
const deployerFor = (objects: Objects) =>
  objects.source ? (objects.source.deployer ?? DEPLOYERS[objects.source.content]) : undefined;

/** Writes the source onto the target with the deployer plugin (bareon.deployers) for its content. */
export default definePlugin({
  reads: ['source'],
  summary:
    'writes the source onto the target through the bareon.deployers plugin for its content (disk-image, rootfs-tar, fs-image)',
  pipelines: { deploy: { after: ['filesystems'] } },
  uses: (objects) => (deployerFor(objects) ? [`bareon.deployers/${deployerFor(objects)}`] : []),
  validate(objects) {
    // the source's own checks (checksum, format) are its deployer's, which validates too
    if (!deployerFor(objects))
      throw new ValidationError('deploy: needs a source to deploy (bareon-deploy SOURCE TARGET)');
  },
  async run(ctx) {
    const name = deployerFor(ctx.objects)!;
    return [
      pluginSubtask(ctx, await ctx.plugins.load('bareon.deployers', name), `${name}: ${ctx.objects.source!.uri}`),
    ];
  },
});

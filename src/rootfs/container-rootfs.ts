import type { Readable } from 'node:stream';
import type { CleanupStack } from '../core/cleanup.js';
import type { DockerEngine } from '../docker/engine.js';
import type { InstalledPackage, RootfsSource } from '../objects/index.js';
import { dockerArtifactRules, type RootfsIdentity } from './docker-artifacts.js';
import { parsePackageDatabase } from './packages.js';
import { TarFilter } from './tar-filter.js';

/**
 * A root filesystem held in a container image. `open()` streams `docker export` of a (created, never
 * started) container through the Docker-artifact rules; the container is removed by the cleanup stack.
 */
export class ContainerRootfs implements RootfsSource {
  packages?: InstalledPackage[];
  /** What first-boot hygiene dropped from the last export (absolute paths). */
  removed?: string[];
  private container: Promise<string> | undefined;

  constructor(
    private readonly engine: DockerEngine,
    readonly image: string,
    private readonly identity: RootfsIdentity,
    private readonly cleanup: CleanupStack,
    /** The bytes `docker export` will produce, roughly, for progress and image sizing. */
    readonly apparentSize?: number,
  ) {}

  private containerId(): Promise<string> {
    this.container ??= (async () => {
      const c = await this.engine.createContainer({
        image: this.image,
        cmd: ['/bin/true'],
        labels: { 'org.bareon.role': 'export' },
      });
      this.cleanup.defer(() => this.engine.removeContainer(c.id), `remove export container ${c.id.slice(0, 12)}`);
      return c.id;
    })();
    return this.container;
  }

  async open(signal?: AbortSignal): Promise<Readable> {
    const raw = await this.engine.exportContainer(await this.containerId());
    const removed: string[] = [];
    this.removed = removed;
    const filter = new TarFilter({
      ...dockerArtifactRules(this.identity, removed),
      clampMtime: this.identity.epoch,
      onCapture: (entry, data) => {
        this.packages = parsePackageDatabase(entry.name, data.toString('utf8'));
      },
    });
    signal?.addEventListener('abort', () => raw.destroy(signal.reason as Error), { once: true });
    raw.on('error', (err) => filter.destroy(err));
    return raw.pipe(filter);
  }
}

import { DockerEngine, RUN_LABEL } from '../../docker/engine.js';

export interface GcResult {
  containers: number;
  images: number;
}

/** Removes every container and temporary image labelled by a bareon run. */
export async function collectGarbage(engine: DockerEngine, log: (line: string) => void): Promise<GcResult> {
  const containers = await engine.listContainers(RUN_LABEL);
  for (const c of containers) {
    await engine.removeContainer(c.Id);
    log(`removed container ${c.Id.slice(0, 12)} (${c.Labels[RUN_LABEL]})`);
  }
  const images = await engine.listImages(RUN_LABEL);
  for (const img of images) {
    await engine.removeImage(img.Id, true);
    log(`removed image ${img.Id.slice(7, 19)} (${img.Labels?.[RUN_LABEL]})`);
  }
  return { containers: containers.length, images: images.length };
}

import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The order of the heavy tiers' files: the QEMU boots first, then the deploy agent's jobs, the other
 * e2e files, and the Docker builds. `make test` runs the unit and integration-local tiers in a
 * vitest run of their own, mostly while this one builds its images; what is left of them then runs
 * beside the boots, which leave most of a core idle (a TCG guest booting keeps about 1.2 of the two
 * busy; one deploying as the agent does, both).
 */
const FIRST = [
  'test/e2e/deploy-boot.test.ts',
  'test/e2e/configdrive-boot.test.ts',
  'test/e2e/boot.test.ts',
  'test/e2e/agent.test.ts',
];

export default class HeavyFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = FIRST.indexOf(path.relative(this.ctx.config.root, f.moduleId));
      if (i >= 0) return i;
      return f.project.name === 'e2e' ? FIRST.length : FIRST.length + 1;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

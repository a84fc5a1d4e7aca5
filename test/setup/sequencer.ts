import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The order of the heavy tiers' files: QEMU first (the deploy agent's jobs, then the other boots),
 * Docker builds after. The disk tests of integration-local run beside them in a pool of their own,
 * and a TCG guest leaves more of the second core to them than a Docker build does.
 */
const FIRST = ['test/e2e/agent.test.ts', 'test/e2e/deploy-boot.test.ts', 'test/e2e/configdrive-boot.test.ts', 'test/e2e/boot.test.ts'];

export default class HeavyFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = FIRST.indexOf(path.relative(this.ctx.config.root, f.moduleId));
      if (i >= 0) return i;
      return f.project.name === 'e2e' ? FIRST.length : FIRST.length + 1;
    };
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

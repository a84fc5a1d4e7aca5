#!/usr/bin/env node
import { logFormatOption, newProgram, parseProgram } from './program.js';
import { runSession } from './session.js';

const program = newProgram('bareon-deploy', 'Deploy an image or a build manifest onto a block device or an image file.')
  .argument('<source>', 'disk image (raw, qcow2), rootfs tarball, or <name>.manifest.json')
  .argument('<target>', 'block device (/dev/sda) or image file')
  .option('--layout <file>', 'layout YAML (for rootfs sources)')
  .option('--only <actions>', 'comma-separated actions to run')
  .option('--skip <actions>', 'comma-separated actions to skip')
  .option('--yes', 'do not ask before writing to a block device', false)
  .option('--dry-run', 'validate and print the plan, write nothing', false)
  .addOption(logFormatOption())
  .action(async (source: string, target: string, opts: { layout?: string; only?: string; skip?: string; yes: boolean; dryRun: boolean; logFormat: 'text' | 'json' }) =>
    runSession(opts.logFormat, async (session) => {
      const { deployCommand } = await import('./commands/deploy.js');
      await deployCommand(source, target, opts, session);
    }),
  );

await parseProgram(program);

#!/usr/bin/env node
import { logFormatOption, newProgram, parseProgram } from './program.js';
import { runSession } from './session.js';

const program = newProgram('bareon-build', 'Build a root filesystem in a container from a profile and export it as artifacts.')
  .argument('<profile>', 'profile YAML')
  .option('-o, --output <dir>', 'artifact directory', 'out')
  .option('--no-cache', 'rebuild every step')
  .option('--dry-run', 'validate and print the plan, build nothing', false)
  .addOption(logFormatOption())
  .action(async (profile: string, opts: { output: string; cache: boolean; dryRun: boolean; logFormat: 'text' | 'json' }) =>
    runSession(opts.logFormat, async (session) => {
      const { buildCommand } = await import('./commands/build.js');
      await buildCommand(profile, { outDir: opts.output, noCache: !opts.cache, dryRun: opts.dryRun }, session);
    }),
  );

await parseProgram(program);

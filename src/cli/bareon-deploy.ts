#!/usr/bin/env node
import { deployProgram } from './deploy-program.js';
import { parseProgram } from './program.js';
import { runSession } from './session.js';

await parseProgram(
  deployProgram((source, target, opts) =>
    runSession(opts.logFormat, async (session) => {
      const { deployCommand, deployInputFromCli } = await import('./commands/deploy.js');
      await deployCommand(deployInputFromCli(source, target, opts), session);
    }),
  ),
);

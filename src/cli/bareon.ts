#!/usr/bin/env node
import { addConfigDriveOptions, logFormatOption, newProgram, parseProgram } from './program.js';
import { runSession } from './session.js';

const program = newProgram(
  'bareon',
  'Build Linux OS images in containers and deploy them onto disks; every stage is a plugin.',
);

program
  .command('plugins')
  .description('list every plugin with its namespace, package, version, source and status')
  .argument('[namespace]', 'only this namespace, e.g. bareon.actions')
  .option('--json', 'print JSON')
  .action(async (namespace: string | undefined, opts: { json?: boolean }) =>
    runSession('text', async () => {
      const { PluginRegistry } = await import('../plugins/registry.js');
      const { listPlugins, formatPluginTable } = await import('./commands/plugins.js');
      const rows = await listPlugins(await PluginRegistry.discover(), namespace);
      process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatPluginTable(rows)}\n`);
    }),
  );

program
  .command('validate')
  .description('validate a profile or a layout file')
  .argument('<file>', 'profile or layout YAML')
  .action(async (file: string) =>
    runSession('text', async () => {
      const { validateFile } = await import('./commands/validate.js');
      process.stdout.write(`${await validateFile(file)}\n`);
    }),
  );

addConfigDriveOptions(program.command('run'))
  .description('run bareon.actions plugins in order: all plan, then all validate, then all run')
  .argument('<action...>', 'action names')
  .option('--layout <file>', 'layout YAML')
  .option('--target <path>', 'block device or image file')
  .option('--yes', 'do not ask before writing to a block device', false)
  .option('--dry-run', 'plan and validate, print the plan, change nothing', false)
  .addOption(logFormatOption())
  .action(
    async (actions: string[], opts: import('./commands/run.js').RunCommandOptions & { logFormat: 'text' | 'json' }) =>
      runSession(opts.logFormat, async (session) => {
        const { runActions } = await import('./commands/run.js');
        await runActions(actions, opts, session);
      }),
  );

program
  .command('agent')
  .description(
    'the deploy agent: run the job of this boot (a disk labelled bareon-job, or bareon.job=URL on the kernel command line) with bareon-deploy, print JSON events and a last line "bareon-job: ok|failed: REASON", then power off or reboot as the job asks; with ipa-api-url= on the kernel command line, be the deploy ramdisk of that OpenStack Ironic instead (docs/ironic-protocol.md)',
  )
  .option('--job <file>', 'run this job file instead (paths relative to it); the power is left alone')
  .option(
    '--ironic <params>',
    'be the deploy ramdisk of an Ironic with these kernel-style parameters ("ipa-api-url=http://127.0.0.1:6385 ipa-advertise-host=127.0.0.1"); the power is left alone',
  )
  .action(async (opts: { job?: string; ironic?: string }) =>
    runSession('json', async (session) => {
      const { agentCommand } = await import('./commands/agent.js');
      return agentCommand(opts, session);
    }),
  );

program
  .command('disks')
  .description(
    "this machine's disks with the attributes disk hints match (serial, wwn, model, vendor, size, rotational, by_path, name) and what holds each",
  )
  .option('--json', 'print JSON')
  .option('--all', 'also loop, RAM, md and device-mapper devices', false)
  .action(async (opts: { json?: boolean; all: boolean }) =>
    runSession('text', async () => {
      const { disksCommand } = await import('./commands/disks.js');
      process.stdout.write(`${await disksCommand(opts)}\n`);
    }),
  );

program
  .command('diff')
  .description(
    'what differs between two artifacts (tarballs, raw or qcow2 disks, ext4 images) or two manifests: files, packages, partitions; exit 1 when they differ',
  )
  .argument('<a>', 'artifact or manifest')
  .argument('<b>', 'artifact or manifest of the same kind')
  .option('--limit <n>', 'show at most this many files', (v) => Number.parseInt(v, 10), 200)
  .action(async (a: string, b: string, opts: { limit: number }) =>
    runSession('text', async (session) => {
      const { diffCommand } = await import('./commands/diff.js');
      return diffCommand(a, b, opts, session);
    }),
  );

program
  .command('gc')
  .description(
    'remove containers and temporary images of bareon runs, prune the step cache to its budget, and drop the apt archive cache',
  )
  .option('--max-age <duration>', 'remove cache images older than this (s, m, h, d, w)', '14d')
  .option('--max-size <size>', 'then remove the oldest cache images until the cache fits', '20GiB')
  .option('--profile <name>', "only this profile's cache")
  .option('--keep-apt-cache', 'keep the shared apt archive cache (downloaded .deb files)', false)
  .action(async (opts: { maxAge: string; maxSize: string; profile?: string; keepAptCache: boolean }) =>
    runSession('text', async (session) => {
      const { DockerEngine } = await import('../docker/engine.js');
      const { collectGarbage, parseBudget, parseDuration } = await import('./commands/gc.js');
      const budget = {
        maxAgeMs: parseDuration(opts.maxAge),
        maxSize: parseBudget(opts.maxSize),
        profile: opts.profile,
        keepAptCache: opts.keepAptCache,
      };
      const engine = await DockerEngine.connect(session.runId);
      const r = await collectGarbage(engine, budget, (line) => process.stdout.write(`${line}\n`));
      process.stdout.write(
        `gc: removed ${r.containers} container(s), ${r.images} temporary image(s), ${r.cacheRemoved} cache image(s); kept ${r.cacheKept}\n`,
      );
    }),
  );

const image = program.command('image').description('manage base images');
image
  .command('bootstrap')
  .description('build a base image with mmdebstrap from a mirror and import it (no registry needed)')
  .argument('<ref>', 'distro:suite, e.g. debian:bookworm or ubuntu:noble; the result is also tagged so')
  .option('--mirror <url>', "apt mirror (default: the host's apt mirror for that distro, else the official one)")
  .option('--variant <variant>', 'mmdebstrap variant', 'minbase')
  .option('--tag <ref>', 'tag the result as this reference instead of distro:suite')
  .addOption(logFormatOption())
  .action(async (ref: string, opts: { mirror?: string; variant: string; tag?: string; logFormat: 'text' | 'json' }) =>
    runSession(opts.logFormat, async (session) => {
      const { bootstrapCommand } = await import('./commands/image.js');
      await bootstrapCommand(ref, opts, session);
    }),
  );

await parseProgram(program);

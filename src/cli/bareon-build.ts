#!/usr/bin/env node
import { addConfigDriveOptions, logFormatOption, newProgram, parseProgram } from './program.js';
import { runSession } from './session.js';

/** --outputs qcow2,netboot → ['qcow2', 'netboot'] */
const formatList = (value: string) =>
  value
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);

type Opts = Omit<import('./commands/build.js').BuildOptions, 'outDir' | 'noCache'> & {
  output: string;
  cache: boolean;
  logFormat: 'text' | 'json';
};

const program = addConfigDriveOptions(
  newProgram(
    'bareon-build',
    'Build a root filesystem in a container from a profile and export it as artifacts, or write it straight onto a disk (--target).',
  )
    .argument('<profile>', 'profile YAML')
    .option('-o, --output <dir>', 'artifact directory (with --target: the manifest of what was written)', 'out')
    .option('--no-cache', 'rebuild every step')
    .option(
      '--outputs <formats>',
      "write these outputs instead of the profile's, comma-separated (such as qcow2,netboot); a format the profile lists keeps its options",
      formatList,
    )
    .option(
      '--target <disk>',
      'build to disk: write the root filesystem onto this block device or image file (the outputs are not written)',
    )
    .option('--size <size>', 'with --target: size of an image-file target, such as 8GiB')
    .option('--layout <file>', "with --target: the layout (default: the profile's, or the default bootable layout)")
    .option('--yes', 'with --target: do not ask before overwriting a block device', false)
    .option('--preserve-on-error', 'with --target: on failure, keep the half-written disk', false)
    .option(
      '--with <actions>',
      'add actions (out-of-tree ones too) where their plugins place them: after the outputs, and with --target in the deploy chain; repeatable',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--sign <key>',
      'sign the manifest with this SSH key (a private key file, or a .pub whose private key ssh-agent holds): <name>.manifest.json.sig, checked by bareon-deploy --trust and ssh-keygen -Y verify -n bareon-manifest',
    )
    .option(
      '--dry-run',
      'validate and print the plan (the resolved pipeline, where each entry came from), build nothing',
      false,
    )
    .addOption(logFormatOption()),
)
  .addHelpText(
    'after',
    '\nExamples:\n  bareon-build profiles/debian-bootable.yaml -o out\n  bareon-build profiles/debian-bootable.yaml -o out --sign ~/.ssh/id_ed25519\n  bareon-build profiles/debian-cloud.yaml --target disk.img --size 4GiB --user-data user-data --meta-data meta-data',
  )
  .action(async (profile: string, opts: Opts) =>
    runSession(opts.logFormat, async (session) => {
      const { buildCommand } = await import('./commands/build.js');
      await buildCommand(profile, { ...opts, outDir: opts.output, noCache: !opts.cache }, session);
    }),
  );

await parseProgram(program);

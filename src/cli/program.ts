import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from '../core/errors.js';
import { VERSION } from '../core/version.js';

export const logFormatOption = () =>
  new Option('--log-format <format>', 'text (bars on a TTY, plain lines otherwise) or json (one event per line)')
    .choices(['text', 'json'])
    .default('text');

/** The config drive flags of bareon-deploy, bareon-build --target and bareon run configdrive. */
export function addConfigDriveOptions(cmd: Command): Command {
  return cmd
    .option('--user-data <file>', 'cloud-init user-data for a config drive')
    .option('--meta-data <file>', 'cloud-init meta-data (YAML, with instance-id) for a config drive')
    .option('--network-config <file>', 'cloud-init network-config for a config drive')
    .option('--config-drive <dir>', 'a directory holding meta-data, user-data and network-config')
    .addOption(
      new Option('--config-drive-flavor <flavor>', 'nocloud (label cidata) or config-2 (OpenStack)').choices([
        'nocloud',
        'config-2',
      ]),
    )
    .addOption(new Option('--config-drive-fs <fs>', 'filesystem of the config drive').choices(['vfat', 'iso9660']));
}

/** A commander program with bareon's conventions: --version, exit 2 on usage errors. */
export function newProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

/** Parses argv; help and version exit 0, usage errors exit 2. */
export async function parseProgram(program: Command, argv = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok =
        err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      process.exit(ok ? ExitCode.ok : ExitCode.usage);
    }
    throw err;
  }
}

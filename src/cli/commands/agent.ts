import { mkdir, readFile, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { findJob, type FoundJob } from '../../agent/find-job.js';
import { jobDeployInput } from '../../agent/job-request.js';
import { localiseJobFiles } from '../../agent/job-files.js';
import { CleanupStack } from '../../core/cleanup.js';
import { BareonError, formatError, ValidationError } from '../../core/errors.js';
import { VERSION } from '../../core/version.js';
import { Reporter } from '../../core/reporter.js';
import { HostExecutor } from '../../host/executor.js';
import { tempDir } from '../../host/mount.js';
import { parseJob } from '../../agent/parse-job.js';
import type { DeployInput } from '../../objects/deploy.js';
import type { Job } from '../../objects/job.js';
import type { Session } from '../session.js';

/** One JSON event line of the agent itself, in the same stream as bareon-deploy's events. */
function say(text: string): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: 'agent', text })}\n`);
}

/**
 * Arrays and volume groups that the agent's own boot assembled from the disks' previous life hold
 * those disks; the agent stops them, and stops udev from assembling them again (it owns the
 * machine's disks), so that the job can rewrite them.
 */
async function releaseOldStorage(signal: AbortSignal): Promise<void> {
  const ex = new HostExecutor(signal);
  // udev would assemble arrays and activate volume groups again as soon as the job writes new
  // partitions over old members; masking the rules for this boot keeps the disks to the job
  await mkdir('/run/udev/rules.d', { recursive: true });
  for (const rule of ['64-md-raid-assembly.rules', '69-lvm.rules'])
    await symlink('/dev/null', `/run/udev/rules.d/${rule}`).catch(() => {});
  await ex.run(['udevadm', 'control', '--reload'], { allowFailure: true });
  const vgs = await ex.run(['vgchange', '--activate', 'n'], { allowFailure: true });
  if (vgs.exitCode === 0 && /logical volume/.test(vgs.stdout))
    say(`released old volume groups: ${vgs.stdout.trim().replace(/\s+/g, ' ')}`);
  const md = await ex.run(['mdadm', '--stop', '--scan'], { allowFailure: true });
  if (md.tail.trim()) say(`released old md arrays: ${md.tail.trim().replace(/\s+/g, ' ')}`);
}

/** The request in a line, for the console: source, target or hints, layout, actions added. */
function describeInput(input: DeployInput): string {
  const parts = [String(input.source)];
  if (input.target) parts.push(`onto ${input.target}`);
  if (input.targetHints.length) parts.push(`onto the disk with ${input.targetHints.join(', ')}`);
  if (typeof input.layout === 'string') parts.push(`layout ${input.layout}`);
  else if (input.layout) parts.push(`the job's layout`);
  if (input.keepLabels.length) parts.push(`keeping ${input.keepLabels.join(', ')}`);
  if (input.with.length) parts.push(`with ${input.with.map((w) => w.name).join(', ')}`);
  if (!input.settings.verify) parts.push('unverified');
  return parts.join('; ');
}

/** An agent image with this file deploys only manifests signed by a key it lists, whatever a job says. */
export const AGENT_TRUST = '/etc/bareon/allowed_signers';

async function agentTrust(): Promise<string | undefined> {
  const st = await stat(AGENT_TRUST).catch(() => undefined);
  return st ? AGENT_TRUST : undefined;
}

const firstLine = (err: unknown) =>
  formatError(err)
    .split('\n')[0]
    .replace(/^error: /, '');

/**
 * Runs a deploy request in this process, as the bareon-deploy executable would (JSON events on
 * stdout, the error on stderr), with a teardown stack of its own that is drained before the result
 * is known; the agent's session drains it too if the agent is stopped meanwhile. Under TCG or on a
 * slow agent, a second Node process costs seconds. Returns the failure, if any.
 */
async function deployInProcess(
  input: DeployInput,
  session: Session,
  deployModule: Promise<typeof import('./deploy.js')>,
): Promise<string | undefined> {
  const cleanup = new CleanupStack();
  const dropGuard = session.cleanup.deferOnFailure(() => cleanup.run(), "the deploy's teardowns");
  try {
    const { deployCommand } = await deployModule;
    const deploySession = { ...session, cleanup, reporter: new Reporter('json', false) };
    await deployCommand(input, deploySession);
    const failures = await cleanup.run('ok');
    for (const f of failures)
      process.stderr.write(`error: the deploy finished, but releasing what it held failed: ${f.message}\n`);
    return failures.length ? `releasing what the deploy held failed: ${failures[0].message}` : undefined;
  } catch (err) {
    const failures = await cleanup.run();
    process.stderr.write(`${formatError(err)}\n`);
    for (const f of failures) session.reporter.warn(`cleanup failed: ${f.message}`);
    return firstLine(err);
  } finally {
    dropGuard();
  }
}

/**
 * `bareon agent`: finds this boot's job (a disk labelled bareon-job, or bareon.job= on the kernel
 * command line), runs bareon-deploy for it with JSON events on stdout, prints `bareon-job: ok` or
 * `bareon-job: failed: REASON` last, then powers off or reboots as the job asks. With `--job FILE`
 * it runs that job and leaves the machine's power alone (for trying jobs out).
 */
export async function agentCommand(opts: { job?: string; ironic?: string }, session: Session): Promise<number> {
  const ironic = opts.job ? undefined : await ironicParams(opts.ironic);
  if (ironic) return ironicAgent(ironic, !opts.ironic, session);
  let job: Job | undefined;
  let reason: string | undefined;
  // the deploy runs in this process: whatever escapes it still ends with the result line (the
  // machine then stays up, for a look)
  const crashed = (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.stdout.write(`bareon-job: failed: internal error: ${firstLine(err)}\n`);
    process.exit(1);
  };
  process.once('uncaughtException', crashed).once('unhandledRejection', crashed);
  // At boot, the deploy's modules load and udev finishes probing the disks at the same time (under
  // TCG, seconds each); the job disk is looked for once udev is done.
  const deployModule = import('./deploy.js');
  deployModule.catch(() => {}); // awaited, with its error, in deployInProcess
  const settled = opts.job
    ? undefined
    : new HostExecutor(session.signal).run(['udevadm', 'settle'], { allowFailure: true });
  try {
    await settled;
    const found: FoundJob = opts.job
      ? { text: await readFile(opts.job, 'utf8'), base: path.dirname(path.resolve(opts.job)), origin: opts.job }
      : await findJob(session.cleanup, session.signal, { onWait: say });
    say(`job from ${found.origin}`);
    job = parseJob(found.text, found.origin);
    if (!opts.job) await releaseOldStorage(session.signal);
    const local = await localiseJobFiles(job, found.base, await tempDir(session.cleanup, 'job-files'), session.signal);
    const input = jobDeployInput(local, found.base, found.origin, await agentTrust());
    say(`deploy ${describeInput(input)}`);
    reason = await deployInProcess(input, session, deployModule);
  } catch (err) {
    reason = firstLine(err);
  }
  // without a readable job there is no when_done to honour: the machine stays up for a look
  const whenDone = job?.when_done ?? 'none';
  if (opts.job && whenDone !== 'none') say(`when_done: ${whenDone} skipped (--job runs leave the power alone)`);
  else if (whenDone !== 'none') say(`when_done: ${whenDone}`);
  // the result is the last line on the console
  process.stdout.write(reason ? `bareon-job: failed: ${reason}\n` : 'bareon-job: ok\n');
  if (!opts.job && whenDone !== 'none')
    await new HostExecutor().run(['systemctl', '--no-block', whenDone], { allowFailure: true });
  return reason ? 1 : 0;
}

/** Ironic's agent settings: from --ironic, else from the kernel command line (none: the job agent). */
async function ironicParams(given?: string) {
  const { ironicAgentParams } = await import('../../agent/ironic/kernel-params.js');
  const cmdline = given ?? (await readFile('/proc/cmdline', 'utf8').catch(() => ''));
  const params = ironicAgentParams(cmdline);
  if (given !== undefined && !params)
    throw new ValidationError('--ironic: no ipa-api-url= (or bareon.ironic-api-url=) among the parameters', {
      hint: 'such as --ironic "ipa-api-url=http://127.0.0.1:6385 ipa-advertise-host=127.0.0.1"',
    });
  return params;
}

/**
 * The deploy ramdisk of an Ironic: its commands run deploys in this process, as a job's does. From
 * the kernel command line (`booted`) Ironic's power commands power the machine off or reboot it;
 * with --ironic the power is left alone and the agent ends there.
 */
async function ironicAgent(
  params: import('../../agent/ironic/kernel-params.js').IronicAgentParams,
  booted: boolean,
  session: Session,
): Promise<number> {
  const { runIronicAgent } = await import('../../agent/ironic/run-agent.js');
  const deployModule = import('./deploy.js');
  deployModule.catch(() => {});
  if (booted) await new HostExecutor(session.signal).run(['udevadm', 'settle'], { allowFailure: true });
  // the disk the last deploy wrote whole, whose identifiers standby.get_partition_uuids reports
  let written: string | undefined;
  const ended = await runIronicAgent(params, {
    version: VERSION,
    say,
    signal: session.signal,
    deploy: async (input) => {
      written = undefined;
      if (input.targetHints.length && !input.target) {
        // chosen here, as bareon-deploy would, so that the agent knows which disk it wrote
        const { resolveTarget } = await import('./target-hints.js');
        const chosen = await resolveTarget(undefined, input.targetHints, undefined);
        say(`target: ${chosen.how ?? chosen.path}`);
        input = { ...input, target: chosen.path, targetHints: [] };
      }
      say(`deploy ${describeInput(input)}`);
      if (booted) await releaseOldStorage(session.signal);
      const failed = await deployInProcess(input, session, deployModule);
      if (failed) throw new BareonError(failed);
      written = input.target;
    },
    eraseDevicesMetadata: async () => {
      // every disk of this machine: only where it was booted to be Ironic's ramdisk
      if (!booted)
        throw new BareonError(
          "erase_devices_metadata erases every disk of the machine; bareon runs it only when booted as Ironic's ramdisk, not with --ironic",
        );
      await releaseOldStorage(session.signal);
      const { eraseDevicesMetadata } = await import('../../host/erase-metadata.js');
      await eraseDevicesMetadata({ signal: session.signal, skipBusy: true, log: say });
    },
    partitionUuids: async () => {
      if (!written) return {};
      const { partitionUuids } = await import('../../host/partition-uuids.js');
      return partitionUuids(written);
    },
    power: booted
      ? async (action) => {
          await new HostExecutor().run(['systemctl', '--no-block', action], { allowFailure: true });
        }
      : undefined,
  });
  say(`ironic: ${ended}`);
  return 0;
}

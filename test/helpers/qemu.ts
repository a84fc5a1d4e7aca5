import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from './cli.js';

export interface BootResult {
  reachedLogin: boolean;
  /** The firmware refused to start what the disk holds (Secure Boot: Access Denied). */
  refused?: boolean;
  seconds: number;
  log: string;
  /** Where the serial log was kept (only when the boot failed). */
  keptLog?: string;
  /** The first boot ended without a login prompt or a refusal, and this is the second. */
  retried?: boolean;
  /**
   * How the boot ended, the serial console's last lines and where the log was kept: for assertion
   * messages, so that a failure reads from the test report alone.
   */
  report: string;
}

/** The last `n` lines of a serial log, without terminal escapes. */
export function serialTail(log: string, n = 25): string {
  const lines = log
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what is removed
    .replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  return lines.slice(-n).join('\n');
}

function describeRun(ending: string, log: string, keptLog: string | undefined): string {
  const tail = serialTail(log) || '(nothing)';
  return `${ending}; last lines on the serial console:\n${tail}\n(serial log kept at ${keptLog ?? '-'})`;
}

/**
 * The firmware a guest boots: SeaBIOS, OVMF without Secure Boot, or OVMF with Secure Boot enforced
 * (SMM, the secboot build) and either Microsoft's keys enrolled (as servers ship) or the snakeoil
 * key of Debian's ovmf package (as a site enrolling its own keys).
 */
export type Firmware = 'bios' | 'uefi' | 'secure-boot-ms' | 'secure-boot-snakeoil';

const OVMF: Record<Exclude<Firmware, 'bios'>, { code: string; vars: string }> = {
  uefi: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  'secure-boot-ms': { code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
  'secure-boot-snakeoil': {
    code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
    vars: '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd',
  },
};

/**
 * OVMF refused to start the disk's loader: Secure Boot found it signed by no key in db. (The firmware
 * then tries network boot, which takes minutes to give up; the refusal is what counts.)
 */
const FIRMWARE_REFUSED = /BdsDxe: failed to load Boot\d+ "UEFI Misc Device[^"]*" .*: Access Denied/;

/** QEMU arguments for the machine and its firmware; `vars` is a writable copy of the variable store. */
async function firmwareArgs(firmware: Firmware, dir: string): Promise<string[]> {
  if (firmware === 'bios') return MACHINE;
  const { code, vars } = OVMF[firmware];
  await copyFile(vars, path.join(dir, 'vars.fd'));
  const secure = firmware !== 'uefi';
  return [
    ...MACHINE.map((a) => (a === 'q35' && secure ? 'q35,smm=on' : a)),
    ...(secure ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${path.join(dir, 'vars.fd')}`,
  ];
}

/**
 * Boots a disk image under QEMU with software emulation (TCG: KVM here is a nested software
 * hypervisor that stalls guests) and waits for "login:" on the serial console. The disk is opened
 * with snapshot=on, so the image is not modified. With `until`, it also waits for those patterns (a
 * marker that cloud-init prints late). The serial log is kept in .test-artifacts/ on failure.
 */
export async function bootToLogin(
  disk: string,
  opts: { firmware: Firmware; timeoutMs?: number; name: string; until?: RegExp[] },
): Promise<BootResult> {
  const first = await bootOnce(disk, opts);
  if (first.reachedLogin || first.refused) {
    const { ending: _, ...result } = first;
    return result;
  }
  // TCG now and then freezes a guest early in the kernel (seen once in ~40 boots: no output for
  // minutes after "IP idents hash table"), and a signed-UKI boot that boots in 30 s everywhere else
  // reached no login once in CI; one more boot tells that apart from a broken image, and how the
  // first one ended stays in the test's output.
  console.log(`${opts.name} (${opts.firmware}): ${first.report}\nbooting it once more`);
  const second = await bootOnce(disk, opts);
  const { ending: _, ...result } = second;
  return { ...result, retried: true, report: `second boot: ${second.report}\nfirst boot: ${first.ending}` };
}

/**
 * A headless q35 under TCG with only the devices a server needs: no VGA (fbcon drawing every console
 * line is emulated too), no CD-ROM, floppy or parallel port, and no SVM (so no kvm module to load).
 * Less for TCG to emulate; over five boots each it saved about 2 s of 42, within this machine's noise.
 */
const MACHINE = ['-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64,-svm', '-smp', '2', '-nodefaults', '-vga', 'none'];

/** No display or monitor; the serial console into `serial`; a reboot ends QEMU. */
const headless = (serial: string) => [
  '-display',
  'none',
  '-monitor',
  'none',
  '-serial',
  `file:${serial}`,
  '-no-reboot',
];

/** No serial output for this long, short of the login prompt: a stalled guest. */
const STALL_MS = 60_000;

async function bootOnce(
  disk: string,
  opts: { firmware: Firmware; timeoutMs?: number; name: string; until?: RegExp[] },
): Promise<BootResult & { ending: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-qemu-'));
  const serial = path.join(dir, 'serial.log');
  const format = disk.endsWith('.qcow2') ? 'qcow2' : 'raw';
  const machine = await firmwareArgs(opts.firmware, dir);
  const started = Date.now();
  const qemu = execa(
    'qemu-system-x86_64',
    [
      ...machine,
      '-m',
      '1024',
      '-drive',
      `file=${disk},format=${format},if=virtio,snapshot=on`,
      '-nic',
      'user,restrict=on,model=virtio-net-pci',
      ...headless(serial),
    ],
    { reject: false },
  );
  const deadline = started + (opts.timeoutMs ?? 240_000);
  let log = '';
  let reachedLogin = false;
  let refused = false;
  let stalled = false;
  let changed = Date.now();
  while (Date.now() < deadline && qemu.exitCode === null) {
    await new Promise((r) => setTimeout(r, 500));
    const now = await readFile(serial, 'latin1').catch(() => '');
    if (now.length !== log.length) changed = Date.now();
    log = now;
    reachedLogin = /login:/.test(log);
    refused = FIRMWARE_REFUSED.test(log);
    if (refused) break;
    if (reachedLogin && (opts.until ?? []).every((re) => re.test(log))) break;
    if (!reachedLogin && Date.now() - changed > STALL_MS) {
      stalled = true;
      break;
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const exitCode = qemu.exitCode;
  qemu.kill('SIGKILL');
  await qemu;
  const ending = reachedLogin
    ? `reached "login:" after ${seconds.toFixed(0)} s`
    : refused
      ? `refused by the firmware after ${seconds.toFixed(0)} s`
      : stalled
        ? `no serial output for ${STALL_MS / 1000} s, ${seconds.toFixed(0)} s into the boot (a stalled guest)`
        : exitCode !== null
          ? `QEMU exited (code ${exitCode}: the guest reset or powered off) after ${seconds.toFixed(0)} s, with no login prompt`
          : `no login prompt within ${seconds.toFixed(0)} s`;
  let keptLog: string | undefined;
  if (!reachedLogin || !(opts.until ?? []).every((re) => re.test(log))) {
    const artifacts = path.join(REPO, '.test-artifacts');
    await mkdir(artifacts, { recursive: true });
    keptLog = path.join(artifacts, `${opts.name}-${opts.firmware}-serial.log`);
    await copyFile(serial, keptLog).catch(() => {});
  }
  await rm(dir, { recursive: true, force: true });
  return { reachedLogin, refused, seconds, log, keptLog, ending, report: describeRun(ending, log, keptLog) };
}

/** A disk of a VM: a virtio disk with a serial (what disk hints match), opened read-write unless snapshot. */
export interface VmDisk {
  file: string;
  serial?: string;
  snapshot?: boolean;
}

export interface VmRun {
  log: string;
  seconds: number;
  /** The guest powered off (QEMU exited) before the deadline. */
  exited: boolean;
  /** `until` matched. */
  matched: boolean;
  keptLog: string;
  /** How the run ended, the serial console's last lines and where the log was kept (for assertion messages). */
  report: string;
}

/**
 * Runs a VM under TCG with several virtio disks (first disk boots) until `until` matches the serial
 * log and, with `waitForExit`, the guest has powered off; or until the deadline. The serial log is
 * kept in .test-artifacts/NAME-serial.log.
 */
export async function runVm(opts: {
  name: string;
  firmware: Firmware;
  disks: VmDisk[];
  until: RegExp;
  waitForExit?: boolean;
  timeoutMs: number;
  memoryMiB?: number;
  /** Network boot: QEMU loads this kernel and initramfs itself, as a PXE loader would. */
  netboot?: { kernel: string; initrd: string; append: string };
  /** A host port on 127.0.0.1 the guest reaches as http://10.0.2.100/ (nothing else is reachable). */
  httpPort?: number;
  /**
   * More of the guest's outgoing connections to carry: to `guest` (10.0.2.x:PORT) relayed to a port
   * on 127.0.0.1 or to a unix socket, where QEMU runs (in `netns` when given).
   */
  forwards?: { guest: string; to: number | string }[];
  /** QEMU user-network hostfwd rules ("tcp:ADDR:PORT-:GUESTPORT"): listeners where QEMU runs. */
  hostForwards?: string[];
  /** The guest's MAC address (the NIC's default otherwise). */
  mac?: string;
  /** Runs QEMU (and so its relays and forwarded ports) in this network namespace (a /proc/PID/ns/net path). */
  netns?: string;
  /** Stops the guest early (the run then reports what the serial log holds so far). */
  signal?: AbortSignal;
}): Promise<VmRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-vm-'));
  const serial = path.join(dir, 'serial.log');
  const machine = await firmwareArgs(opts.firmware, dir);
  const drives = opts.disks.flatMap((d, i) => [
    '-drive',
    `file=${d.file},format=${d.file.endsWith('.qcow2') ? 'qcow2' : 'raw'},if=none,id=d${i}${d.snapshot ? ',snapshot=on' : ''}`,
    '-device',
    `virtio-blk-pci,drive=d${i}${d.serial ? `,serial=${d.serial}` : ''}${i === 0 && !opts.netboot ? ',bootindex=0' : ''}`,
  ]);
  const netboot = opts.netboot
    ? ['-kernel', opts.netboot.kernel, '-initrd', opts.netboot.initrd, '-append', opts.netboot.append]
    : [];
  const relay = path.join(REPO, 'test/helpers/tcp-relay.mjs');
  const forwards = [
    ...(opts.httpPort ? [{ guest: '10.0.2.100:80', to: opts.httpPort }] : []),
    ...(opts.forwards ?? []),
  ];
  const nic = [
    'user,restrict=on,model=virtio-net-pci',
    ...(opts.mac ? [`mac=${opts.mac}`] : []),
    ...forwards.map((f) => `guestfwd=tcp:${f.guest}-cmd:${process.execPath} ${relay} ${f.to}`),
    ...(opts.hostForwards ?? []).map((h) => `hostfwd=${h}`),
  ].join(',');
  const args = [
    ...machine,
    '-m',
    String(opts.memoryMiB ?? 1536),
    ...drives,
    ...netboot,
    '-nic',
    nic,
    ...headless(serial),
  ];
  const started = Date.now();
  // nsenter enters the namespace and then runs QEMU in its own process, so a kill reaches QEMU
  const qemu = opts.netns
    ? execa('nsenter', [`--net=${opts.netns}`, 'qemu-system-x86_64', ...args], { reject: false })
    : execa('qemu-system-x86_64', args, { reject: false });
  let log = '';
  let matched = false;
  while (Date.now() < started + opts.timeoutMs && qemu.exitCode === null && !opts.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 500));
    log = await readFile(serial, 'latin1').catch(() => '');
    matched = opts.until.test(log);
    if (matched && !opts.waitForExit) break;
  }
  const exited = qemu.exitCode !== null;
  qemu.kill('SIGKILL');
  await qemu;
  log = await readFile(serial, 'latin1').catch(() => log);
  matched = opts.until.test(log);
  // kept every time: a run that matched may still fail the test's later checks
  const artifacts = path.join(REPO, '.test-artifacts');
  await mkdir(artifacts, { recursive: true });
  const keptLog = path.join(artifacts, `${opts.name}-serial.log`);
  await copyFile(serial, keptLog).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  const seconds = (Date.now() - started) / 1000;
  const ending = matched
    ? `matched ${opts.until} after ${seconds.toFixed(0)} s${exited ? ', and the guest powered off' : ''}`
    : exited
      ? `the guest reset or powered off after ${seconds.toFixed(0)} s without printing ${opts.until}`
      : `no ${opts.until} on the serial console within ${seconds.toFixed(0)} s`;
  return { log, seconds, exited, matched, keptLog, report: describeRun(ending, log, keptLog) };
}

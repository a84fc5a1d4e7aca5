import { findHolders } from '../../host/holders.js';
import { listDisks, type DiskInfo } from '../../host/disk-inventory.js';
import { formatBytes } from '../../core/size.js';

/** `bareon disks`: this machine's disks with every attribute a hint can name, and what holds each. */
export async function disksCommand(opts: { json?: boolean; all?: boolean }): Promise<string> {
  const disks = await listDisks({ all: opts.all });
  const rows: (DiskInfo & { held_by: string[] })[] = [];
  for (const d of disks)
    rows.push({
      ...d,
      held_by: await findHolders(d.path, 'block').catch((err: Error) => [`unknown (${err.message})`]),
    });
  if (opts.json) return JSON.stringify(rows, null, 2);
  if (!rows.length) return 'no disks (loop, RAM, md and dm devices are left out; --all shows them)';
  const header = ['NAME', 'SIZE', 'ROT', 'SERIAL', 'WWN', 'MODEL', 'VENDOR', 'BY-PATH', 'IN USE'];
  const cells = rows.map((r) => [
    r.path,
    formatBytes(r.size),
    r.rotational ? 'yes' : 'no',
    r.serial ?? '-',
    r.wwn ?? '-',
    r.model ?? '-',
    r.vendor ?? '-',
    r.by_path ?? '-',
    r.held_by.length ? r.held_by.join('; ') : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [header, ...cells]
    .map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  '))
    .join('\n');
}

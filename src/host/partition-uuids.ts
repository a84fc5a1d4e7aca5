import { open } from 'node:fs/promises';
import { HostExecutor } from './executor.js';

/** GPT's type GUID of an EFI system partition. */
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

interface SfdiskTable {
  partitiontable?: {
    label?: string;
    id?: string;
    partitions?: { node: string; type?: string; uuid?: string }[];
  };
}

/**
 * What Ironic's standby.get_partition_uuids answers for a disk written whole, the keys as
 * ironic-python-agent gives them: "root uuid" is the disk identifier of the MBR (0x and 8 hex
 * digits, what Ironic chain-loads a whole-disk image by); on a GPT disk "efi system partition uuid"
 * is its ESP's partition UUID; and "partitions" maps each partition's node to its partition UUID
 * (PARTUUID, as blkid names it also on MBR disks).
 */
export async function partitionUuids(disk: string): Promise<Record<string, unknown>> {
  const fh = await open(disk, 'r');
  const mbr = Buffer.alloc(512);
  try {
    await fh.read(mbr, 0, 512, 0);
  } finally {
    await fh.close();
  }
  const out: Record<string, unknown> = { 'root uuid': `0x${mbr.readUInt32LE(440).toString(16).padStart(8, '0')}` };
  const r = await new HostExecutor().run(['sfdisk', '--json', disk], { allowFailure: true });
  if (r.exitCode !== 0) return out;
  const table = (JSON.parse(r.stdout) as SfdiskTable).partitiontable;
  const parts = table?.partitions ?? [];
  const esp = parts.find((p) => p.type?.toUpperCase() === ESP_TYPE);
  if (table?.label === 'gpt' && esp?.uuid) out['efi system partition uuid'] = esp.uuid.toLowerCase();
  // an MBR partition's UUID, as blkid gives it: the disk identifier and the partition's number
  const dosId = table?.label === 'dos' && table.id ? table.id.replace(/^0x/, '').padStart(8, '0') : undefined;
  const uuidOf = (p: { node: string; uuid?: string }) =>
    p.uuid?.toLowerCase() ?? (dosId ? `${dosId}-${(/(\d+)$/.exec(p.node)?.[1] ?? '').padStart(2, '0')}` : undefined);
  const uuids = Object.fromEntries(parts.flatMap((p) => (uuidOf(p) ? [[p.node, uuidOf(p)]] : [])));
  if (Object.keys(uuids).length) out.partitions = uuids;
  return out;
}

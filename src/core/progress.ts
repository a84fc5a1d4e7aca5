import { formatBytes } from './size.js';

/** Byte progress of a task; rendered as bytes, rate and ETA on a TTY, plain lines otherwise. */
export interface Progress {
  /** Starts (or restarts) counting; `total` enables the percentage and ETA. */
  start(total?: number): void;
  add(bytes: number): void;
  done(): void;
}

/** "412.0 MiB / 800.0 MiB (51%), 152.3 MiB/s, ETA 3s" */
export function describeProgress(bytes: number, total: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
  const parts = [
    total
      ? `${formatBytes(bytes)} / ${formatBytes(total)} (${Math.floor((bytes / total) * 100)}%)`
      : formatBytes(bytes),
  ];
  parts.push(`${formatBytes(rate)}/s`);
  if (total && rate > 0 && bytes < total) parts.push(`ETA ${Math.ceil((total - bytes) / rate)}s`);
  return parts.join(', ');
}

/** A Progress that reports at most once per `intervalMs` (and always on done). */
export function throttledProgress(
  report: (bytes: number, total: number | undefined, text: string) => void,
  intervalMs: number,
): Progress {
  let bytes = 0;
  let total: number | undefined;
  let started = Date.now();
  let last = 0;
  const emit = () => report(bytes, total, describeProgress(bytes, total, Date.now() - started));
  return {
    start(t) {
      bytes = 0;
      total = t;
      started = Date.now();
      last = started; // the first second's rate says nothing
    },
    add(n) {
      bytes += n;
      const now = Date.now();
      if (now - last >= intervalMs) {
        last = now;
        emit();
      }
    },
    done: emit,
  };
}

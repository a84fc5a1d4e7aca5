import { readdir, readFile } from 'node:fs/promises';

const OFFICIAL: Record<string, string> = {
  debian: 'http://deb.debian.org/debian',
  ubuntu: 'http://archive.ubuntu.com/ubuntu',
};

/** URIs of the host's apt sources (deb822 `.sources` files and one-line `sources.list`). */
async function hostAptUris(root = '/etc/apt'): Promise<string[]> {
  const uris: string[] = [];
  const files = [
    `${root}/sources.list`,
    ...(await readdir(`${root}/sources.list.d`).catch(() => [] as string[])).map((f) => `${root}/sources.list.d/${f}`),
  ];
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^URIs:\s*(\S+)/gm)) uris.push(m[1]);
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)) uris.push(m[1]);
  }
  return uris;
}

/**
 * The mirror to bootstrap `distro` from: the host's own apt mirror for that distro when it has one
 * (a local mirror on an air-gapped site), else the distro's official mirror.
 */
export async function defaultMirror(distro: string, aptRoot?: string): Promise<string> {
  const uris = await hostAptUris(aptRoot);
  const own = uris.find((u) => new RegExp(`/${distro}/?$`).test(u) && !/security/.test(u));
  return own ?? OFFICIAL[distro];
}

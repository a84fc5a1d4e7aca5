/** Podman's Docker-compatible socket, as `make setup` starts it. */
export const PODMAN_HOST = 'unix:///run/podman/podman.sock';

/**
 * The podman tier runs against Podman: everything after this in the tier's global setup (the base
 * bootstrap), the tests and the commands they start talk to DOCKER_HOST.
 */
export default function usePodman(): void {
  process.env.DOCKER_HOST = PODMAN_HOST;
}

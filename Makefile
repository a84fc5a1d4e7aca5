.PHONY: setup build test test-unit test-integration test-e2e test-podman test-agent demo agent bench clean

setup:
	@bash scripts/setup.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build: node_modules/.package-lock.json
	npm run build --silent

# Everything: unit, integration (real Docker, image files) and e2e (QEMU boots) in one run, then the
# build tests again through Podman (a run of its own: its setup points DOCKER_HOST at Podman's
# socket). Docker builds and QEMU boots run one file at a time. Beside them, in threads, run the unit
# tests, three files at once (they mostly wait on the CLI they spawn; vitest's default, one fewer
# than the cores, would run them one at a time here), then the integration tests that need neither
# Docker nor QEMU (integration-local), one at a time.
UNIT = npx vitest run --project unit --maxWorkers=3

test: setup
	npx vitest run --project unit --project integration --project integration-local --project e2e --maxWorkers=3
	npx vitest run --project podman

test-unit: node_modules/.package-lock.json
	$(UNIT)

test-integration: setup
	npx vitest run --project integration --project integration-local

test-e2e: setup
	npx vitest run --project e2e

test-podman: setup
	npx vitest run --project podman

# The deploy agent's jobs in QEMU alone (part of the e2e tier): md RAID 1 + LVM over two disks, a
# redeploy keeping /data, a network-booted agent writing a qcow2 chosen by serial.
test-agent: setup
	npx vitest run --project agent

# The main job on the embedded default: build the bootable profile, deploy it onto out/disk.img, print how to boot it.
demo: setup build
	node dist/src/cli/bareon-build.js profiles/debian-bootable.yaml -o out
	node dist/src/cli/bareon-deploy.js out/debian-bootable.manifest.json out/disk.img --size 6GiB --grow
	@echo 'boot it: qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -nic none -nographic -drive file=out/disk.img,format=raw,if=virtio,snapshot=on'

# The deploy agent image (out/deploy-agent.qcow2): Node and bareon staged from this checkout, then built.
agent: setup build
	bash scripts/agent-bundle.sh build/agent
	node dist/src/cli/bareon-build.js profiles/deploy-agent.yaml -o out

bench: setup build
	bash bench/build

clean:
	rm -rf dist out build .test-artifacts "$${BAREON_TEST_IMAGES:-/var/cache/bareon-test-images}"

SHELL := /bin/bash

.PHONY: setup build lint format test test-unit test-integration test-e2e test-podman test-agent test-ironic fuzz demo agent bench clean

setup:
	@bash scripts/setup.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build: node_modules/.package-lock.json
	npm run build --silent

# Formatting and lint rules (Biome), and the import rules (dependency-cruiser: in-tree plugins use
# only the public subpaths, src/'s folders are layers). The import rules resolve "bareon" to dist/.
lint: build
	npx biome check --error-on-warnings .
	npx depcruise src actions builders --config .dependency-cruiser.cjs

format: node_modules/.package-lock.json
	npx biome check --write .

# Everything: lint, unit, integration (real Docker, image files) and e2e (QEMU boots) tests, then the build
# tests again through Podman (a run of its own: its setup points DOCKER_HOST at Podman's socket).
# Two vitest runs side by side, on code compiled once: the heavy one (Docker builds and QEMU boots,
# one file at a time, after building the shared images), and the light one (the unit tests, three
# files at once, and the integration tests that need neither Docker nor QEMU, one at a time), which
# is done while the heavy run is still building its images. The light run's report follows the heavy one's.
UNIT = npx vitest run --project unit --maxWorkers=3
LIGHT_LOG = .test-artifacts/light.log
HEAVY_LOG = .test-artifacts/heavy.log

test: setup build lint
	@mkdir -p .test-artifacts
	@BAREON_TEST_COMPILED=1 npx vitest run --project unit --project integration-local --maxWorkers=3 >$(LIGHT_LOG) 2>&1 & light=$$!; \
	BAREON_TEST_COMPILED=1 npx vitest run --project integration --project e2e 2>&1 | tee $(HEAVY_LOG); heavy=$${PIPESTATUS[0]}; \
	wait $$light; light=$$?; \
	echo; echo "light run (unit, integration-local): exit $$light"; cat $(LIGHT_LOG); \
	echo; echo "heavy run (integration, e2e): exit $$heavy, light run: exit $$light"; \
	bash scripts/failure-summary.sh $(HEAVY_LOG) $(LIGHT_LOG); \
	[ $$heavy = 0 ] && [ $$light = 0 ]
	BAREON_TEST_COMPILED=1 npx vitest run --project podman

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

# bareon's agent as the deploy ramdisk of a stock Ironic (Debian 12's, in a container bareon builds),
# in QEMU alone (part of the e2e tier): direct with a config drive, a failing checksum, custom-agent RAID 1 + LVM.
test-ironic: setup
	npx vitest run --project ironic

# The differential fuzzers at length (make test runs a few hundred cases of each): qcow2 against
# qemu-img, tar against GNU tar, manifests, jobs, profiles and layouts. CASES=N SEED=S; a failure
# prints its seed and case, to be added to test/fuzz/seeds/.
CASES ?= 1000
fuzz: setup build
	BAREON_TEST_COMPILED=1 BAREON_FUZZ_CASES=$(CASES) $(if $(SEED),BAREON_FUZZ_SEED=$(SEED)) npx vitest run --project unit --project integration-local \
	  test/integration/fuzz-qcow2.test.ts test/integration/fuzz-tar.test.ts test/unit/document-fuzz.test.ts

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

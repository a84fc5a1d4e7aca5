.PHONY: setup build test test-unit test-integration test-e2e demo bench clean

setup:
	@bash scripts/setup.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build: node_modules/.package-lock.json
	npm run build --silent

# Everything: unit, then integration (real Docker, image files), then e2e (QEMU boots).
test: setup
	npx vitest run --project unit
	npx vitest run --project integration --project e2e

test-unit: node_modules/.package-lock.json
	npx vitest run --project unit

test-integration: setup
	npx vitest run --project integration

test-e2e: setup
	npx vitest run --project e2e

# The main job on the embedded default profile: a Debian root filesystem as out/debian-minimal.tar.zst.
demo: setup build
	node dist/src/cli/bareon-build.js profiles/debian-minimal.yaml -o out

bench: setup build
	bash bench/build

clean:
	rm -rf dist out .test-artifacts

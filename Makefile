.PHONY: setup build test test-unit test-integration test-e2e demo bench clean

setup:
	@bash scripts/setup.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build: node_modules/.package-lock.json
	npx tsc -p tsconfig.json

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

clean:
	rm -rf dist out .test-artifacts

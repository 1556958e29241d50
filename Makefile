# sentrix: `make run` (install deps, build, start with the demo camera) and `make test`.
# Cargo's target dir lives outside the clone so CI and fresh clones reuse the build.
CARGO_TARGET_DIR ?= $(HOME)/.cache/sentrix/target
export CARGO_TARGET_DIR
CONFIG ?= surveillance.yml
ARCH ?= arm64
BIN := $(CARGO_TARGET_DIR)/release/sentrix
# The benches: a binary of their own (crates/bench), never part of the appliance.
BENCH_BIN := $(CARGO_TARGET_DIR)/release/sentrix-bench
# Footage too large for the repository, extracted from Debian packages by scripts/deps.sh test.
TESTDATA_CACHE ?= $(HOME)/.cache/sentrix/testdata

.PHONY: deps build run test screenshots check bench bench-build bench-steps bench-long cross smoke deb deb-bench clean

deps:
	@scripts/deps.sh run

build: deps
	@start=$$(date +%s); \
	  echo "make: building the release binary (about 16 minutes the first time on 2 cores)"; \
	  cargo build --release --locked --bin sentrix && \
	  echo "make: release binary built in $$(( $$(date +%s) - start )) s"

run: build
	$(BIN) check-config --config $(CONFIG)
	@# First start: the first admin's generated password is printed once (kept nowhere in clear).
	$(BIN) init --if-needed --config $(CONFIG)
	$(BIN) run --config $(CONFIG)

# The whole workspace: sentrix (lib, tests/it, tests/web, tests/camera_loss), the bench's
# and the kdf's unit tests.
test:
	@scripts/deps.sh test
	@start=$$(date +%s); \
	  echo "make test: building the tests (about 12 minutes the first time on 2 cores)"; \
	  cargo test --locked --workspace --features sentrix/test-faults --no-run && \
	  echo "make test: tests built in $$(( $$(date +%s) - start )) s"
	@start=$$(date +%s); \
	  echo "make test: running the tests (about 13 minutes; each binary's time ends its 'test result' line)"; \
	  cargo test --locked --workspace --features sentrix/test-faults; rc=$$?; \
	  echo "make test: tests ran in $$(( $$(date +%s) - start )) s"; exit $$rc

# The README's screenshot, taken again by the Chromium test of the timeline page.
screenshots:
	@scripts/deps.sh test
	cargo test --locked --features test-faults --test it -- browser::timeline_in_headless_chromium
	cp target/browser-test/timeline-playing.png docs/img/timeline.png

check:
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo clippy --locked --workspace --all-targets --features test-faults -- -D warnings

# Every bench appends its headline figures to $(BENCH_TABLE); the last step prints them
# as one Markdown table (docs/performance.md keeps the latest).
BENCH_TABLE ?= $(CARGO_TARGET_DIR)/bench-table.tsv
BENCH_MINUTES ?= 10

# The onnxruntime peer comes from PyPI into its own venv (Debian 12's python3 refuses a
# system-wide pip install); it sees the Debian packages too (aiosmtpd, selenium).
BENCH_VENV ?= $(HOME)/.cache/sentrix/bench-venv

bench-build: build
	cargo build --release --locked -p sentrix-bench --bin sentrix-bench

bench: bench-build
	@scripts/deps.sh test bench
	@$(BENCH_VENV)/bin/python3 -c 'import onnxruntime, onnx, PIL' 2>/dev/null || \
	  { python3 -m venv --system-site-packages $(BENCH_VENV) && \
	    $(BENCH_VENV)/bin/pip install --quiet onnxruntime onnx pillow numpy; }
	rm -f $(BENCH_TABLE)
	PATH=$(BENCH_VENV)/bin:$$PATH SENTRIX_BENCH_TABLE=$(BENCH_TABLE) \
	  $(MAKE) --no-print-directory bench-steps
	$(BENCH_BIN) table $(BENCH_TABLE)

bench-steps:
	$(BENCH_BIN) ingest
	$(BENCH_BIN) crypto
	$(BENCH_BIN) record
	$(BENCH_BIN) record --mode continuous --seconds 120
	$(BENCH_BIN) timeline
	$(BENCH_BIN) analytics
	$(BENCH_BIN) review
	$(BENCH_BIN) alarms
	$(BENCH_BIN) notify
	$(BENCH_BIN) offsite
	$(BENCH_BIN) live
	$(BENCH_BIN) detect --ops --model tests/data/yolox_nano.onnx --size 320,416 tests/data/coco_000000001000.jpg tests/data/coco_000000002153.jpg
	$(BENCH_BIN) gate --model tests/data/yolox_nano.onnx --video $(TESTDATA_CACHE)/vtest.avi
	SENTRIX_BIN=$(BIN) scripts/bench-http.sh
	SENTRIX_BIN=$(BIN) scripts/bench-hostile.sh
	SENTRIX_BIN=$(BIN) scripts/bench-memory.sh 120
	$(BENCH_BIN) cameras --minutes $(BENCH_MINUTES)

# The 4-camera memory run for an hour (not in CI): RSS must stay flat.
bench-long: bench-build
	@scripts/deps.sh test
	$(BENCH_BIN) cameras --minutes 60

cross:
	@scripts/deps.sh run cross
	cross/build.sh $(ARCH)

smoke: cross
	cross/smoke.sh $(ARCH)

# make deb ARCH=amd64|arm64|armhf → ~/.cache/sentrix/deb/sentrix_VERSION_ARCH.deb, then checked
deb:
	@scripts/deps.sh run test $(if $(filter amd64,$(ARCH)),,cross)
	packaging/check-deb.sh "$$(packaging/deb.sh $(ARCH))"

# make deb-bench ARCH=amd64|arm64|armhf → the sentrix-bench package (the benchmarks), checked
deb-bench:
	@scripts/deps.sh run test $(if $(filter amd64,$(ARCH)),,cross)
	packaging/deb-bench.sh $(ARCH)

clean:
	cargo clean

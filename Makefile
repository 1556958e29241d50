# sentrix: `make run` (install deps, build, start with the demo camera) and `make test`.
# Cargo's target dir lives outside the clone so CI and fresh clones reuse the build.
CARGO_TARGET_DIR ?= $(HOME)/.cache/sentrix/target
export CARGO_TARGET_DIR
CONFIG ?= surveillance.yml
ARCH ?= arm64
BIN := $(CARGO_TARGET_DIR)/release/sentrix

.PHONY: deps build run test check bench cross smoke deb clean

deps:
	@scripts/deps.sh run

build: deps
	cargo build --release --locked --bin sentrix

run: build
	$(BIN) check-config --config $(CONFIG)
	@# First start: the first admin's generated password is printed once (kept nowhere in clear).
	$(BIN) init --if-needed --config $(CONFIG)
	$(BIN) run --config $(CONFIG)

test:
	@scripts/deps.sh test
	cargo test --locked

check:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

bench: build
	@scripts/deps.sh test
	$(BIN) bench ingest
	$(BIN) bench crypto
	$(BIN) bench record
	@python3 -c 'import onnxruntime, PIL' 2>/dev/null || pip install --quiet onnxruntime pillow numpy
	$(BIN) bench detect --model ../shared/testdata/yolox_nano.onnx ../shared/testdata/bus.jpg ../shared/testdata/zidane.jpg
	$(BIN) bench gate --model ../shared/testdata/yolox_nano.onnx --video ../shared/testdata/people_walking_360p_5s.mp4
	@command -v wrk >/dev/null || apt-get install -y -q wrk
	SENTRIX_BIN=$(BIN) scripts/bench-http.sh

cross:
	@scripts/deps.sh run cross
	cross/build.sh $(ARCH)

smoke: cross
	cross/smoke.sh $(ARCH)

# make deb ARCH=amd64|arm64|armhf → ~/.cache/sentrix/deb/sentrix_VERSION_ARCH.deb, then checked
deb:
	@scripts/deps.sh run test $(if $(filter amd64,$(ARCH)),,cross)
	packaging/check-deb.sh "$$(packaging/deb.sh $(ARCH))"

clean:
	cargo clean

# ringvisor — the two commands a newcomer needs:
#   make demo   install what is needed, build, prepare guest assets, boot a VM to a shell
#   make test   install what is needed, build, run every test (unit, KVM, e2e in the test host)
.PHONY: all deps build guest rootfs testhost demo test unit fuzz e2e bench bench-io bench-io-models bench-api bench-guest-io bench-consolidation bench-snapshot stress clean

BUILD ?= build
JOBS ?= $(shell nproc)
RINGVISOR := $(BUILD)/ringvisor
GUEST := $(BUILD)/guest
MEMORY ?= 512M
CPUS ?= 2

all: build

deps:
	tools/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

guest: deps
	tools/guest/build.sh $(GUEST)

testhost: deps
	tools/testhost/build.sh

# Debian 12 with systemd, fio and iperf3 (debootstrap; cached in build/rootfs).
rootfs: guest
	tools/rootfs/build.sh $(BUILD)/rootfs

# Boots the guest directly when KVM runs ring-0 code natively, otherwise
# inside the test host (an L1 Linux under QEMU with an emulated AMD-V CPU).
demo: build guest testhost
	tools/demo.sh $(RINGVISOR) $(GUEST) $(MEMORY) $(CPUS)

unit: build guest
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

e2e: build guest testhost rootfs
	tests/e2e/run.sh $(BUILD)

# libFuzzer targets (clang 16, ASan+UBSan), FUZZ_SECONDS each.
FUZZ_SECONDS ?= 30
fuzz: deps
	fuzz/run.sh $(BUILD) $(FUZZ_SECONDS)

test: unit fuzz e2e

# Benchmarks against QEMU in the same test-host run (docs/BENCHMARKS.md).
bench: build guest testhost
	bench/boot/run.sh $(BUILD)

bench-io: build guest testhost
	bench/io/run.sh $(BUILD)

# IDE PIO / IDE DMA / virtio-blk / e1000 / virtio-net; table + docs/io-models.png.
bench-io-models: build guest testhost
	bench/io-models/run.sh $(BUILD)

# Guest deaths under I/O load, ringvisor beside QEMU (RUNS, WORKLOADS: bench/stress/run.sh).
stress: build guest testhost rootfs
	bench/stress/run.sh $(BUILD)

# API round trip vs QEMU's QMP; process start -> guest, API vs flags (bench/api/run.sh).
bench-api: build testhost
	bench/api/run.sh $(BUILD)

# fio and iperf3 in the Debian guest, beside QEMU and kvmtool (docs/BENCHMARKS.md).
bench-guest-io: build guest testhost rootfs
	bench/guest-io/run.sh $(BUILD)

# How many idle 128 MiB guests fit in one test host, ringvisor beside QEMU; per-VM overhead.
bench-consolidation: build guest testhost
	bench/consolidation/run.sh $(BUILD)

# Snapshot, restore and live migration beside QEMU (RUNS, MEM_MIB, DIRTY_RATES: bench/snapshot/run.sh).
bench-snapshot: build guest testhost
	bench/snapshot/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

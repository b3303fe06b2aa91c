# KVM MTE for Linux 5.10: test bed entry points.
#
#   make demo     main job: build the patched kernel, show the feature under QEMU
#   make test     the full matrix: series checks, {VHE, nVHE} x {mte=on, mte=off}
#                 on the default base, VHE mte=on on the other bases
#   make test-debug  the whole suite on the debug kernel (KASAN, lockdep,
#                 DEBUG_VM, DEBUG_PAGEALLOC, kmemleak), VHE mte=on
#   make test-mainline  the reliability tests on Debian's mainline 6.12
#                 cloud kernel, VHE mte=on: what is not ok differs
#   make bench    benchmarks against mainline (Debian's cloud kernel) in one
#                 run: ROUNDS=5 boots of each kernel, table and plot under
#                 build/bench/ (about an hour; SMOKE=1: one small size, CI)
#
# BASE=VERSION picks a base of tooling/bases for the steps below (default: its
# first entry). Everything is built under build/ (ignored by git).

T := tooling
# Debian's Python, which has the packages the test bed installs (docutils).
PYTHON := $(or $(wildcard /usr/bin/python3),python3)
ifneq ($(BASE),)
export KVM_MTE_BASE := $(BASE)
endif
# Where the base's builds go: build/ for the default base, build/base-VERSION/
# for another.
WORK := $(shell KVM_MTE_BASE=$(KVM_MTE_BASE) bash -c '. $(T)/common.sh && echo $$WORK')
ifeq ($(WORK),)
$(error unknown base: see tooling/bases)
endif

.PHONY: all deps base compose refresh export kernel kernel-vhe kernel-nvhe \
	selftests demo test test-debug test-mainline bench check fresh-machine run clean distclean help

all: help

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))
	@echo "  other targets: deps base compose refresh export kernel kernel-vhe kernel-nvhe"
	@echo "                 selftests run check fresh-machine clean distclean"
	@echo "  make run FLAVOUR=vhe|nvhe MTE=on|off    one QEMU run of the whole suite"
	@echo "  make BASE=5.10.262 TARGET               any target on another base of tooling/bases"

deps:
	$(T)/deps.sh

base:
	$(T)/fetch-base.sh

# FORCE=1 discards uncommitted edits in the composed tree.
compose:
	$(T)/compose.sh $(if $(FORCE),--force)

refresh:
	$(T)/refresh.sh

# The review series, signed off by you (git config user.name/user.email).
export: compose
	$(T)/export.sh

kernel: kernel-vhe kernel-nvhe

kernel-vhe kernel-nvhe: kernel-%: compose
	$(T)/build-kernel.sh $*

selftests: compose
	$(T)/build-selftests.sh

# The series checks alone: make check [STEPS="roundtrip am ..."]
check:
	$(T)/check-series.sh $(STEPS)

# The README's two commands in a fresh Debian 12 root (slow).
fresh-machine:
	$(T)/fresh-machine.sh

# One QEMU run: make run FLAVOUR=nvhe MTE=off
FLAVOUR ?= vhe
MTE ?= on
run: kernel-$(FLAVOUR) selftests
	$(T)/run-qemu.sh $(WORK)/out-$(FLAVOUR)/arch/arm64/boot/Image $(WORK)/initramfs.cpio \
		$(WORK)/runs/$(FLAVOUR)-mte-$(MTE).log $(FLAVOUR) $(MTE)
	$(PYTHON) $(T)/report.py $(FLAVOUR)-mte-$(MTE)=$(WORK)/runs/$(FLAVOUR)-mte-$(MTE).log

demo:
	$(T)/demo.sh

test:
	$(T)/matrix.sh

test-debug:
	$(T)/test-debug.sh

test-mainline:
	$(T)/test-mainline.sh

bench:
	$(T)/bench.sh

clean:
	rm -rf build/out-* build/runs build/kselftest-install build/initramfs.cpio build/series \
		build/base-*/out-* build/base-*/runs

distclean:
	rm -rf build

# KVM MTE for Linux 5.10: test bed entry points.
#
#   make demo     main job: build the patched kernel, show the feature under QEMU
#   make test     the full matrix: {VHE, nVHE} x {mte=on, mte=off}
#
# Everything is built under build/ (ignored by git).

T := tooling

.PHONY: all deps base compose refresh export kernel kernel-vhe kernel-nvhe \
	selftests demo test run clean distclean help

all: help

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))
	@echo "  other targets: deps base compose refresh export kernel selftests run clean"

deps:
	$(T)/deps.sh

base:
	$(T)/fetch-base.sh

# FORCE=1 discards uncommitted edits in build/linux.
compose:
	$(T)/compose.sh $(if $(FORCE),--force)

refresh:
	$(T)/refresh.sh

export: compose
	$(T)/export.sh

kernel: kernel-vhe kernel-nvhe

kernel-vhe kernel-nvhe: kernel-%: compose
	$(T)/build-kernel.sh $*

selftests: compose
	$(T)/build-selftests.sh

# One QEMU run: make run FLAVOUR=nvhe MTE=off
FLAVOUR ?= vhe
MTE ?= on
run: kernel-$(FLAVOUR) selftests
	$(T)/run-qemu.sh build/out-$(FLAVOUR)/arch/arm64/boot/Image build/initramfs.cpio \
		build/runs/$(FLAVOUR)-mte-$(MTE).log $(FLAVOUR) $(MTE)
	python3 $(T)/report.py $(FLAVOUR)-mte-$(MTE)=build/runs/$(FLAVOUR)-mte-$(MTE).log

demo:
	$(T)/demo.sh

test:
	$(T)/matrix.sh

clean:
	rm -rf build/out-* build/runs build/kselftest-install build/initramfs.cpio build/series

distclean:
	rm -rf build

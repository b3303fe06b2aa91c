#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Reject a combined guest object that would silently depend on the host:
# an undefined symbol means guest code calls something outside the guest
# image (libc, host helpers, compiler runtime), and any allocated section
# other than guest_image (e.g. .init_array from a static constructor) would be
# linked into the host and never copied into the guest.
#
# usage: check_guest_image.sh NM OBJDUMP OBJECT

nm=$1
objdump=$2
obj=$3

undefined=$("$nm" -u "$obj") || exit 1
if [ -n "$undefined" ]; then
	echo "error: guest image $obj has undefined symbols; guest code may only" >&2
	echo "use the guest runtime (guest_memset etc.), not libc or host code:" >&2
	echo "$undefined" >&2
	exit 1
fi

stray=$("$objdump" -h -w "$obj" | awk '/ALLOC/ && $2 != "guest_image" { print $2 }') || exit 1
if [ -n "$stray" ]; then
	echo "error: guest image $obj has allocated sections outside guest_image" >&2
	echo "(static constructors and the like cannot run in the guest):" >&2
	echo "$stray" >&2
	exit 1
fi

// SPDX-License-Identifier: GPL-2.0
/*
 * arm64 architectural constants used by both the host side (to program the
 * vCPU and build stage-1 tables) and the guest side (to poke system
 * registers). Freestanding: only <stdint.h>, so guest code can include it.
 */
#pragma once

#include <stdint.h>

namespace arch
{

constexpr uint64_t bit(unsigned int n)
{
	return uint64_t{1} << n;
}

constexpr uint64_t PAGE_SIZE = 4096;
constexpr unsigned int PAGE_SHIFT = 12;
constexpr uint64_t BLOCK_SIZE_2M = uint64_t{2} << 20;
constexpr uint64_t BLOCK_SIZE_1G = uint64_t{1} << 30;

/* MAIR_EL1: one byte of attributes per index; the index goes into the PTE. */
namespace mair
{
constexpr uint8_t DEVICE_nGnRnE = 0x00;
constexpr uint8_t NORMAL_WB = 0xff;
/* Normal inner/outer write-back, with MTE allocation tags checked. */
constexpr uint8_t NORMAL_TAGGED = 0xf0;

constexpr unsigned int IDX_DEVICE = 0;
constexpr unsigned int IDX_NORMAL = 1;
constexpr unsigned int IDX_TAGGED = 2;

constexpr uint64_t attr(unsigned int idx, uint8_t value)
{
	return uint64_t{value} << (8 * idx);
}

constexpr uint64_t VALUE = attr(IDX_DEVICE, DEVICE_nGnRnE) | attr(IDX_NORMAL, NORMAL_WB) |
			   attr(IDX_TAGGED, NORMAL_TAGGED);
} // namespace mair

namespace tcr
{
constexpr unsigned int T0SZ_SHIFT = 0;
constexpr uint64_t EPD0 = bit(7);
constexpr unsigned int IRGN0_SHIFT = 8;
constexpr unsigned int ORGN0_SHIFT = 10;
constexpr unsigned int SH0_SHIFT = 12;
constexpr unsigned int TG0_SHIFT = 14;
constexpr unsigned int T1SZ_SHIFT = 16;
constexpr uint64_t EPD1 = bit(23);
constexpr unsigned int TG1_SHIFT = 30;
constexpr unsigned int IPS_SHIFT = 32;
constexpr uint64_t TBI0 = bit(37);
constexpr uint64_t TBI1 = bit(38);
constexpr uint64_t TCMA0 = bit(57);
constexpr uint64_t TCMA1 = bit(58);

constexpr uint64_t RGN_WBWA = 1;
constexpr uint64_t SH_INNER = 3;
constexpr uint64_t TG0_4K = 0;
/* TG1 uses a different encoding than TG0 for the same granule. */
constexpr uint64_t TG1_4K = 2;
constexpr uint64_t IPS_40BIT = 2;
constexpr uint64_t TxSZ_48BIT_VA = 64 - 48;
} // namespace tcr

namespace sctlr
{
constexpr uint64_t M = bit(0);
constexpr uint64_t A = bit(1);
constexpr uint64_t C = bit(2);
constexpr uint64_t SA = bit(3);
constexpr uint64_t I = bit(12);
constexpr uint64_t WXN = bit(19);
constexpr uint64_t ITFSB = bit(37);
constexpr unsigned int TCF0_SHIFT = 38;
constexpr unsigned int TCF_SHIFT = 40;
constexpr uint64_t ATA0 = bit(42);
constexpr uint64_t ATA = bit(43);

/* Tag check fault modes for the TCF/TCF0 fields. */
constexpr uint64_t TCF_NONE = 0;
constexpr uint64_t TCF_SYNC = 1;
constexpr uint64_t TCF_ASYNC = 2;
constexpr uint64_t TCF_MASK = 3;

/*
 * Bits that are RES1 in ARMv8.0 (EOS, TSCXT, EIS, SPAN, nTLSMD, LSMAOE).
 * On later CPUs they are real controls, and 1 selects the ARMv8.0 behaviour.
 */
constexpr uint64_t RES1 = bit(11) | bit(20) | bit(22) | bit(23) | bit(28) | bit(29);

/* MMU and caches on; no MTE bits, a test opts in to tag checking itself. */
constexpr uint64_t GUEST_DEFAULT = RES1 | M | C | SA | I;
} // namespace sctlr

namespace cpacr
{
constexpr unsigned int FPEN_SHIFT = 20;
constexpr uint64_t FPEN_NO_TRAP = 3;
} // namespace cpacr

namespace id_aa64pfr1
{
constexpr unsigned int MTE_SHIFT = 8;
constexpr uint64_t MTE_MASK = 0xf;
/* FEAT_MTE2: tags in memory; the level the kernel requires for HWCAP2_MTE. */
constexpr uint64_t MTE_MTE2 = 2;
} // namespace id_aa64pfr1

/* PSTATE bits as they appear in SPSR_ELx and in KVM's pstate core register. */
namespace pstate
{
/* Tag Check Override: tag checks are suppressed while it is set. */
constexpr uint64_t TCO = bit(25);
} // namespace pstate

/* Writable fields of the MTE system registers; every other bit is RES0. */
namespace gcr
{
constexpr uint64_t EXCLUDE_MASK = 0xffff;
constexpr uint64_t RRND = bit(16);
constexpr uint64_t WRITABLE = EXCLUDE_MASK | RRND;
} // namespace gcr

namespace rgsr
{
constexpr uint64_t TAG_MASK = 0xf;
constexpr unsigned int SEED_SHIFT = 8;
constexpr uint64_t SEED_MASK = uint64_t{0xffff} << SEED_SHIFT;
constexpr uint64_t WRITABLE = TAG_MASK | SEED_MASK;
} // namespace rgsr

/* TFSR_EL1 has TF0 and TF1, TFSRE0_EL1 only TF0. */
namespace tfsr
{
constexpr uint64_t TF0 = bit(0);
constexpr uint64_t TF1 = bit(1);
constexpr uint64_t WRITABLE_EL1 = TF0 | TF1;
constexpr uint64_t WRITABLE_E0 = TF0;
} // namespace tfsr

namespace esr
{
constexpr unsigned int EC_SHIFT = 26;
constexpr uint64_t EC_MASK = 0x3f;
constexpr uint64_t ISS_MASK = (uint64_t{1} << 25) - 1;
constexpr uint64_t DFSC_MASK = 0x3f;
constexpr uint64_t WNR = bit(6);
/* DFSC: translation fault; the low two bits give the level. */
constexpr uint64_t DFSC_TRANSLATION_L0 = 0x04;
constexpr uint64_t DFSC_TAG_CHECK = 0x11;
/* Synchronous external abort, not on a translation table walk. */
constexpr uint64_t DFSC_SYNC_EXT_ABORT = 0x10;

constexpr uint64_t EC_UNKNOWN = 0x00;
constexpr uint64_t EC_SYS64 = 0x18;
constexpr uint64_t EC_IABT_CUR = 0x21;
constexpr uint64_t EC_DABT_LOW = 0x24;
constexpr uint64_t EC_DABT_CUR = 0x25;
constexpr uint64_t EC_BRK64 = 0x3c;

constexpr uint64_t ec(uint64_t esr)
{
	return (esr >> EC_SHIFT) & EC_MASK;
}
} // namespace esr

/* KVM gives vCPU n (n < 16) the affinity level 0 value n. */
namespace mpidr
{
constexpr uint64_t AFF0_MASK = 0xff;
} // namespace mpidr

/* Stage-1 descriptor bits (VMSAv8-64, 4 KiB granule). */
namespace pte
{
constexpr uint64_t VALID = bit(0);
/* Table descriptor at levels 0-2, page descriptor at level 3. */
constexpr uint64_t TABLE_OR_PAGE = bit(1);
constexpr unsigned int ATTRINDX_SHIFT = 2;
constexpr uint64_t AP_RDONLY = bit(7);
constexpr unsigned int SH_SHIFT = 8;
constexpr uint64_t SH_INNER = 3;
constexpr uint64_t AF = bit(10);
constexpr uint64_t PXN = bit(53);
constexpr uint64_t UXN = bit(54);
constexpr uint64_t ADDR_MASK = ((uint64_t{1} << 48) - 1) & ~(PAGE_SIZE - 1);
} // namespace pte

/* Offsets of the 16 vector table entries, in units of 0x80 bytes. */
namespace vector
{
constexpr unsigned int COUNT = 16;
constexpr unsigned int SYNC_CUR_SP0 = 0;
constexpr unsigned int SYNC_CUR_SPX = 4;
constexpr unsigned int IRQ_CUR_SPX = 5;
constexpr unsigned int SERROR_CUR_SPX = 7;
} // namespace vector

/* Virtual addresses use 56 bits; bits 63:56 are the (ignored) tag byte. */
constexpr uint64_t VA_TAG_SHIFT = 56;
constexpr uint64_t untagged(uint64_t va)
{
	return va & ((uint64_t{1} << VA_TAG_SHIFT) - 1);
}

/* MTE allocation tags: one 4-bit tag per 16-byte granule, in VA bits 59:56. */
namespace mte
{
constexpr uint64_t GRANULE_SIZE = 16;
constexpr uint64_t GRANULES_PER_PAGE = PAGE_SIZE / GRANULE_SIZE;
constexpr unsigned int TAG_SHIFT = 56;
constexpr uint64_t TAG_MASK = 0xf;
constexpr uint64_t NUM_TAGS = TAG_MASK + 1;

/* va with its logical (pointer) tag replaced by tag. */
constexpr uint64_t with_tag(uint64_t va, uint64_t tag)
{
	return (va & ~(TAG_MASK << TAG_SHIFT)) | ((tag & TAG_MASK) << TAG_SHIFT);
}

constexpr uint64_t tag_of(uint64_t va)
{
	return (va >> TAG_SHIFT) & TAG_MASK;
}
} // namespace mte

} // namespace arch

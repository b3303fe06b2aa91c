// SPDX-License-Identifier: GPL-2.0
/*
 * Builder for the guest's stage-1 tables: 4 KiB granule, 48-bit VA, four
 * levels, TTBR0 only. Tables live in guest RAM (a pool inside slot 0) and are
 * written through the host mapping of that pool before the guest runs.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "arch.hpp"

namespace kvmt
{

/* How the guest's stage 1 maps a region. */
enum class Stage1 {
	unmapped,
	normal, /* Normal WB, MAIR index IDX_NORMAL */
	tagged, /* Normal WB Tagged, MAIR index IDX_TAGGED */
	device, /* Device-nGnRnE, never executable */
};

struct MapOptions {
	Stage1 attr = Stage1::normal;
	bool writable = true;
	/* Use 4 KiB pages even where a 2 MiB block would fit. */
	bool force_4k = false;
};

/* TCR_EL1 matching the tables built here. TBI0 is on so tagged pointers translate. */
constexpr uint64_t stage1_tcr()
{
	using namespace arch::tcr;

	return (TxSZ_48BIT_VA << T0SZ_SHIFT) | (RGN_WBWA << IRGN0_SHIFT) |
	       (RGN_WBWA << ORGN0_SHIFT) | (SH_INNER << SH0_SHIFT) | (TG0_4K << TG0_SHIFT) |
	       (TxSZ_48BIT_VA << T1SZ_SHIFT) | EPD1 | (TG1_4K << TG1_SHIFT) |
	       (IPS_40BIT << IPS_SHIFT) | TBI0;
}

class PageTable
{
public:
	/* pool_host is the host view of guest-physical [pool_gpa, pool_gpa + pool_size). */
	PageTable(uint8_t *pool_host, uint64_t pool_gpa, size_t pool_size);

	/* Maps [va, va + size) to [pa, ...); throws on overlap or pool exhaustion. */
	void map(uint64_t va, uint64_t pa, uint64_t size, const MapOptions &opts);
	/* Software walk; the tag byte of va is ignored as with TBI0. */
	std::optional<uint64_t> translate(uint64_t va) const;
	uint64_t root_gpa() const { return root_gpa_; }

private:
	uint64_t alloc_table();
	uint64_t *table(uint64_t gpa) const;
	uint64_t *next_table(uint64_t *entry);

	uint8_t *pool_host_;
	uint64_t pool_gpa_;
	size_t pool_size_;
	size_t pool_used_ = 0;
	uint64_t root_gpa_;
};

} // namespace kvmt

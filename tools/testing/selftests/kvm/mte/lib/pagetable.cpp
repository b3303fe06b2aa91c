// SPDX-License-Identifier: GPL-2.0
/*
 * Stage-1 table construction and software walk, see pagetable.hpp.
 */
#include "pagetable.hpp"

#include "names.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace kvmt
{

namespace
{

constexpr unsigned int LEVELS = 4;
constexpr unsigned int BLOCK_LEVEL_2M = 2;
constexpr unsigned int PAGE_LEVEL = 3;
constexpr unsigned int ENTRIES_SHIFT = 9;
constexpr uint64_t ENTRIES_MASK = (uint64_t{1} << ENTRIES_SHIFT) - 1;
constexpr uint64_t VA_LIMIT = uint64_t{1} << 48;

constexpr unsigned int level_shift(unsigned int level)
{
	return arch::PAGE_SHIFT + ENTRIES_SHIFT * (LEVELS - 1 - level);
}

constexpr uint64_t index_at(uint64_t va, unsigned int level)
{
	return (va >> level_shift(level)) & ENTRIES_MASK;
}

bool is_table(uint64_t desc, unsigned int level)
{
	return (desc & arch::pte::VALID) && (desc & arch::pte::TABLE_OR_PAGE) && level < PAGE_LEVEL;
}

uint64_t leaf_attrs(const MapOptions &opts)
{
	using namespace arch;
	uint64_t desc = pte::VALID | pte::AF | pte::UXN;

	switch (opts.attr) {
	case Stage1::normal:
		desc |= uint64_t{mair::IDX_NORMAL} << pte::ATTRINDX_SHIFT;
		desc |= pte::SH_INNER << pte::SH_SHIFT;
		break;
	case Stage1::tagged:
		desc |= uint64_t{mair::IDX_TAGGED} << pte::ATTRINDX_SHIFT;
		desc |= pte::SH_INNER << pte::SH_SHIFT;
		break;
	case Stage1::device:
		desc |= uint64_t{mair::IDX_DEVICE} << pte::ATTRINDX_SHIFT;
		desc |= pte::PXN;
		break;
	case Stage1::unmapped:
		throw std::logic_error("stage-1 map with Stage1::unmapped");
	}
	if (!opts.writable)
		desc |= pte::AP_RDONLY;
	return desc;
}

} // namespace

PageTable::PageTable(uint8_t *pool_host, uint64_t pool_gpa, size_t pool_size)
	: pool_host_(pool_host), pool_gpa_(pool_gpa), pool_size_(pool_size),
	  root_gpa_(alloc_table())
{
}

uint64_t PageTable::alloc_table()
{
	if (pool_used_ + arch::PAGE_SIZE > pool_size_)
		throw std::runtime_error("guest page-table pool exhausted");

	uint64_t gpa = pool_gpa_ + pool_used_;

	pool_used_ += arch::PAGE_SIZE;
	std::memset(table(gpa), 0, arch::PAGE_SIZE);
	return gpa;
}

uint64_t *PageTable::table(uint64_t gpa) const
{
	return reinterpret_cast<uint64_t *>(pool_host_ + (gpa - pool_gpa_));
}

uint64_t *PageTable::next_table(uint64_t *entry)
{
	if (!(*entry & arch::pte::VALID))
		*entry = alloc_table() | arch::pte::VALID | arch::pte::TABLE_OR_PAGE;
	else if (!(*entry & arch::pte::TABLE_OR_PAGE))
		throw std::runtime_error("stage-1 mapping overlaps an existing block");
	return table(*entry & arch::pte::ADDR_MASK);
}

void PageTable::map(uint64_t va, uint64_t pa, uint64_t size, const MapOptions &opts)
{
	const uint64_t attrs = leaf_attrs(opts);
	const uint64_t page_mask = arch::PAGE_SIZE - 1;

	if ((va | pa | size) & page_mask)
		throw std::invalid_argument("stage-1 map of unaligned range at VA " + hex(va));
	if (va + size > VA_LIMIT || va + size < va)
		throw std::invalid_argument("stage-1 map beyond 48-bit VA at " + hex(va));

	while (size) {
		const bool block = !opts.force_4k && !(va % arch::BLOCK_SIZE_2M) &&
				   !(pa % arch::BLOCK_SIZE_2M) && size >= arch::BLOCK_SIZE_2M;
		const unsigned int leaf_level = block ? BLOCK_LEVEL_2M : PAGE_LEVEL;
		uint64_t *tbl = table(root_gpa_);

		for (unsigned int level = 0; level < leaf_level; level++)
			tbl = next_table(&tbl[index_at(va, level)]);

		uint64_t &entry = tbl[index_at(va, leaf_level)];

		if (entry & arch::pte::VALID)
			throw std::runtime_error("stage-1 VA " + hex(va) + " is already mapped");
		/* Level 3 leaves are "page" descriptors, which set the table bit. */
		entry = pa | attrs | (block ? 0 : arch::pte::TABLE_OR_PAGE);

		const uint64_t step = block ? arch::BLOCK_SIZE_2M : arch::PAGE_SIZE;

		va += step;
		pa += step;
		size -= step;
	}
}

std::optional<uint64_t> PageTable::translate(uint64_t va) const
{
	const uint64_t *tbl = table(root_gpa_);

	va = arch::untagged(va);
	if (va >= VA_LIMIT)
		return std::nullopt;

	for (unsigned int level = 0; level < LEVELS; level++) {
		const uint64_t desc = tbl[index_at(va, level)];

		if (!(desc & arch::pte::VALID))
			return std::nullopt;
		if (!is_table(desc, level)) {
			const uint64_t offset_mask = (uint64_t{1} << level_shift(level)) - 1;

			return (desc & arch::pte::ADDR_MASK & ~offset_mask) | (va & offset_mask);
		}
		tbl = table(desc & arch::pte::ADDR_MASK);
	}
	return std::nullopt;
}

} // namespace kvmt

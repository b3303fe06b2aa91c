// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded fuzzer of the MTE ABI against a model. Random calls of
 * KVM_ARM_MTE_COPY_TAGS (valid ranges across memslots and the holes between
 * them, and every kind of bad argument and bad buffer), memslot changes
 * (create, delete, move, dirty logging on and off, read-only and size
 * changes that must be refused), KVM_GET_DIRTY_LOG, the MTE registers by
 * ONE_REG on two vCPUs, KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) with any flags and
 * arguments (refused once vCPUs exist; idempotent on a VM without them),
 * and a guest that sets and checks tags with STG and LDG. The model knows
 * the tags of every granule of every memslot's memory, the dirty pages of
 * every logged memslot and every register, so each call must give exactly
 * the count, the errno, the tags, the dirty bitmap or the value the model
 * predicts; at the end FROM_GUEST and the guest's own LDG must agree with
 * the model on every granule.
 *
 * All along, a third vCPU runs on a thread of its own in a logged memslot
 * out of the calls' reach: it retags its memory with STG alone, round after
 * round, and checks every tag with LDG, while the calls change memslots,
 * registers and tags around it; after each round its dirty log must hold
 * every page (a tag store needs write permission at stage 2). Its memory
 * stays out of the model, so the run stays deterministic.
 *
 * KTEST_FUZZ_SEED and KTEST_FUZZ_CALLS (default 100000) in the environment
 * choose the run. On a mismatch the sequence of calls that led to it is
 * minimised by replaying subsets in new VMs, and the shortest one that
 * still fails is printed, one call per line, with the seed.
 */
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/kvm.hpp"
#include "lib/mte_vm.hpp"
#include "lib/names.hpp"
#include "lib/test.hpp"
#include "mte_fuzz.hpp"

using namespace kvmt;

namespace
{

constexpr uint64_t PAGE = arch::PAGE_SIZE;
constexpr uint64_t TAGS_PER_PAGE = arch::mte::GRANULES_PER_PAGE;

/* Memslots 1..FUZZ_SLOTS, each always backed by the same host memory. */
constexpr unsigned int FUZZ_SLOTS = 4;
/* Places in the IPA space a memslot can sit, each followed by a hole. */
constexpr unsigned int FUZZ_PLACES = 6;
constexpr uint64_t FUZZ_SLOT_PAGES = 8;
constexpr uint64_t FUZZ_HOLE_PAGES = 2;
constexpr uint64_t FUZZ_STRIDE = (FUZZ_SLOT_PAGES + FUZZ_HOLE_PAGES) * PAGE;
constexpr uint64_t FUZZ_GPA = 0x8000'0000;
constexpr uint64_t FUZZ_AREA = FUZZ_PLACES * FUZZ_STRIDE;
/* A copy's range: up to this many pages, starting up to 2 pages outside the area. */
constexpr uint64_t FUZZ_MAX_COPY_PAGES = 12;
constexpr uint64_t FUZZ_MARGIN_PAGES = 2;

constexpr uint64_t DEFAULT_CALLS = 100000;
constexpr uint64_t DEFAULT_SEED = 0x6d74'6566'757a'7a01;
/* Replays the minimisation may spend. */
constexpr unsigned int MAX_REPLAYS = 150;

constexpr uint64_t MAX_LENGTH = (uint64_t{1} << 31) - PAGE;
constexpr uint64_t TO_GUEST = KVM_ARM_TAGS_TO_GUEST;
constexpr uint64_t FROM_GUEST = KVM_ARM_TAGS_FROM_GUEST;

/* The MTE registers, and an encoding next to them that is no register. */
constexpr reg::Reg MTE_REGS[] = {reg::GCR_EL1, reg::RGSR_EL1, reg::TFSR_EL1, reg::TFSRE0_EL1};
constexpr uint64_t MTE_REG_WRITABLE[] = {arch::gcr::WRITABLE, arch::rgsr::WRITABLE,
					 arch::tfsr::WRITABLE_EL1, arch::tfsr::WRITABLE_E0};
constexpr uint64_t NO_SUCH_REG = reg::sysreg_id(3, 0, 1, 0, 7);
constexpr unsigned int FUZZ_VCPUS = 2;

/* The busy vCPU, after the fuzzed ones, and its memslot, far from any copy's range. */
constexpr unsigned int FUZZ_BUSY_VCPU = FUZZ_VCPUS;
constexpr uint32_t FUZZ_BUSY_SLOT = FUZZ_SLOTS + 1;
constexpr uint64_t FUZZ_BUSY_GPA = FUZZ_GPA + FUZZ_AREA + 32 * PAGE;
constexpr uint64_t FUZZ_BUSY_PAGES = 8;
static_assert(FUZZ_BUSY_GPA >=
	      FUZZ_GPA + FUZZ_AREA + (FUZZ_MARGIN_PAGES + FUZZ_MAX_COPY_PAGES + 1) * PAGE);
/* Every page of the busy slot, as KVM_GET_DIRTY_LOG reports them. */
constexpr uint64_t FUZZ_BUSY_ALL_PAGES = (uint64_t{1} << FUZZ_BUSY_PAGES) - 1;
static_assert(FUZZ_BUSY_PAGES < 64);
/* How long the final check waits for the busy vCPU's first round. */
constexpr int BUSY_FIRST_ROUND_MS = 30000;
/*
 * The busy vCPU's pause between rounds: it still overlaps every call, and
 * the fuzzed vCPU and the VMM keep their share of a small test bed.
 */
constexpr auto BUSY_PAUSE = std::chrono::milliseconds(1);

/* Where the user buffer of a copy points. */
enum class Buffer {
	normal,
	unmapped,  /* nothing accessible (PROT_NONE) */
	read_only, /* FROM_GUEST cannot store the tags */
	ends_early /* only the first ok_pages pages' tags are accessible */
};

enum class Kind {
	copy,
	set_slot,
	dirty_log,
	reg_set,
	reg_get,
	reg_bad,
	enable_cap,
	guest_stg,
	guest_check
};

/* The VMs KVM_ENABLE_CAP is tried on. */
enum class CapVm { fuzzed, no_vcpus };

const char *kind_name(Kind k)
{
	switch (k) {
	case Kind::copy:
		return "copy";
	case Kind::set_slot:
		return "set_slot";
	case Kind::dirty_log:
		return "dirty_log";
	case Kind::reg_set:
		return "reg_set";
	case Kind::reg_get:
		return "reg_get";
	case Kind::reg_bad:
		return "reg_bad";
	case Kind::enable_cap:
		return "enable_cap";
	case Kind::guest_stg:
		return "guest_stg";
	case Kind::guest_check:
		return "guest_check";
	}
	return "?";
}

/* One call, completely described, so a subset of a run can be replayed. */
struct Op {
	Kind kind = Kind::copy;
	/* copy */
	uint64_t ipa = 0, length = 0, flags = 0, reserved = 0;
	Buffer buf = Buffer::normal;
	uint64_t ok_pages = 0;
	/* copy (TO_GUEST buffer) and guest_stg: seed of the tags */
	uint64_t seed = 0;
	/* set_slot, dirty_log, guest_*: memslot index; set_slot: place, flags, pages */
	unsigned int slot = 0, place = 0;
	uint32_t mem_flags = 0;
	uint64_t pages = 0;
	/* guest_*: page in the memslot; reg_*: vCPU, register, value */
	uint64_t page = 0;
	unsigned int vcpu = 0, reg = 0;
	uint64_t value = 0;
	/* enable_cap: the VM, with flags and value as the capability's flags and args[0] */
	CapVm cap_vm = CapVm::fuzzed;

	std::string describe() const
	{
		std::string s = kind_name(kind);

		switch (kind) {
		case Kind::copy:
			s += " ipa=" + hex(ipa) + " length=" + hex(length) + " flags=" + hex(flags);
			if (reserved)
				s += " reserved=" + hex(reserved);
			if (buf == Buffer::unmapped)
				s += " buffer=unmapped";
			else if (buf == Buffer::read_only)
				s += " buffer=read-only";
			else if (buf == Buffer::ends_early)
				s += " buffer=ends-after-" + std::to_string(ok_pages) + "-pages";
			break;
		case Kind::set_slot:
			s += " slot=" + std::to_string(slot + 1) +
			     " place=" + std::to_string(place) + " pages=" + std::to_string(pages) +
			     " flags=" + hex(mem_flags);
			break;
		case Kind::dirty_log:
			s += " slot=" + std::to_string(slot + 1);
			break;
		case Kind::reg_set:
		case Kind::reg_get:
			s += " vcpu=" + std::to_string(vcpu) + " " +
			     std::string(MTE_REGS[reg].name);
			if (kind == Kind::reg_set)
				s += "=" + hex(value);
			break;
		case Kind::reg_bad:
			s += " vcpu=" + std::to_string(vcpu);
			break;
		case Kind::enable_cap:
			s += cap_vm == CapVm::fuzzed ? " vm=fuzzed" : " vm=no-vcpus";
			s += " flags=" + hex(flags) + " args[0]=" + hex(value);
			break;
		case Kind::guest_stg:
		case Kind::guest_check:
			s += " slot=" + std::to_string(slot + 1) + " page=" + std::to_string(page);
			break;
		}
		return s;
	}
};

/* A tag per granule from a seed: any function both sides can recompute. */
uint8_t seeded_tag(uint64_t seed, uint64_t i)
{
	uint64_t x = seed + i * 0x9e37'79b9'7f4a'7c15;

	x = (x ^ (x >> 29)) * 0xbf58'476d'1ce4'e5b9;
	return static_cast<uint8_t>((x ^ (x >> 32)) & arch::mte::TAG_MASK);
}

/* What the kernel should have: tags, memslots, dirty pages, registers. */
struct Model {
	struct Slot {
		bool present = false;
		unsigned int place = 0;
		uint32_t flags = 0;
		std::set<uint64_t> dirty;
	};

	std::array<Slot, FUZZ_SLOTS> slots;
	/* Tags of each memslot's host memory: they stay with it when it moves. */
	std::array<std::vector<uint8_t>, FUZZ_SLOTS> tags;
	std::array<std::array<uint64_t, std::size(MTE_REGS)>, FUZZ_VCPUS> regs = {};

	Model()
	{
		for (auto &t : tags)
			t.assign(FUZZ_SLOT_PAGES * TAGS_PER_PAGE, 0);
	}

	static uint64_t place_gpa(unsigned int place) { return FUZZ_GPA + place * FUZZ_STRIDE; }

	/* The memslot holding gpa, if any. */
	std::optional<unsigned int> slot_at(uint64_t gpa) const
	{
		for (unsigned int s = 0; s < FUZZ_SLOTS; s++) {
			const uint64_t base = place_gpa(slots[s].place);

			if (slots[s].present && gpa >= base && gpa < base + FUZZ_SLOT_PAGES * PAGE)
				return s;
		}
		return std::nullopt;
	}

	bool place_taken(unsigned int place, unsigned int except) const
	{
		for (unsigned int s = 0; s < FUZZ_SLOTS; s++)
			if (s != except && slots[s].present && slots[s].place == place)
				return true;
		return false;
	}
};

/* Buffers a copy can be given; each is big enough for the longest valid copy. */
class Buffers
{
public:
	Buffers()
		: normal_(FUZZ_MAX_COPY_PAGES * TAGS_PER_PAGE),
		  read_only_(Mapping::map("mmap(read-only buffer)", nullptr, PAGE,
					  PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
					  0)),
		  edge_(Mapping::map("mmap(buffer with a hole)", nullptr, 2 * PAGE,
				     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
	{
		static_assert(FUZZ_MAX_COPY_PAGES * TAGS_PER_PAGE <= PAGE);
		check(make_result("mprotect(PROT_READ)",
				  mprotect(read_only_.get(), PAGE, PROT_READ)));
		check(make_result(
			"mprotect(PROT_NONE)",
			mprotect(static_cast<uint8_t *>(edge_.get()) + PAGE, PAGE, PROT_NONE)));
		/* Kept mapped, so no later mapping can take its place. */
		unmapped_ = Mapping::map("mmap(PROT_NONE)", nullptr, PAGE, PROT_NONE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}

	/* The buffer for op, filled with op's tags where it can be written. */
	uint8_t *prepare(const Op &op)
	{
		const uint64_t n =
			op.length <= FUZZ_MAX_COPY_PAGES * PAGE ? mte_tag_bytes(op.length) : 0;

		switch (op.buf) {
		case Buffer::normal:
			fill(normal_.data(), n, op.seed);
			return normal_.data();
		case Buffer::unmapped:
			return static_cast<uint8_t *>(unmapped_.get());
		case Buffer::read_only:
			check(make_result("mprotect(RW)", mprotect(read_only_.get(), PAGE,
								   PROT_READ | PROT_WRITE)));
			fill(static_cast<uint8_t *>(read_only_.get()), n, op.seed);
			check(make_result("mprotect(R)",
					  mprotect(read_only_.get(), PAGE, PROT_READ)));
			return static_cast<uint8_t *>(read_only_.get());
		case Buffer::ends_early: {
			uint8_t *p = static_cast<uint8_t *>(edge_.get()) + PAGE -
				     op.ok_pages * TAGS_PER_PAGE;

			fill(p, std::min(n, op.ok_pages * TAGS_PER_PAGE), op.seed);
			return p;
		}
		}
		return nullptr;
	}

	/* Whether the tags of page j of the copy are accessible in the buffer. */
	static bool page_ok(const Op &op, uint64_t j, bool to_guest)
	{
		switch (op.buf) {
		case Buffer::normal:
			return true;
		case Buffer::unmapped:
			return false;
		case Buffer::read_only:
			return to_guest;
		case Buffer::ends_early:
			return j < op.ok_pages;
		}
		return false;
	}

private:
	static void fill(uint8_t *p, uint64_t n, uint64_t seed)
	{
		/* The high nibble is noise the kernel must ignore. */
		for (uint64_t i = 0; i < n; i++)
			p[i] = static_cast<uint8_t>(seeded_tag(seed, i) |
						    (seeded_tag(~seed, i) << 4));
	}

	std::vector<uint8_t> normal_;
	Mapping read_only_;
	Mapping edge_;
	Mapping unmapped_;
};

/* A VM with the fuzzer's memslot memory, its vCPUs and the model, replaying ops. */
class Fuzzer
{
public:
	Fuzzer() : kvm_(mte_kvm()), vm_(mte_vm(kvm_)), no_vcpus_(mte_vm(kvm_))
	{
		for (auto &b : backing_)
			b = Mapping::map("mmap(memslot memory)", nullptr, FUZZ_SLOT_PAGES * PAGE,
					 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
					 0);
		vm_.map(FUZZ_GPA, FUZZ_GPA, FUZZ_AREA, MapOptions{.attr = Stage1::tagged});

		RegionSpec busy =
			tagged_region(FUZZ_BUSY_SLOT, FUZZ_BUSY_GPA, FUZZ_BUSY_PAGES * PAGE);

		busy.flags = KVM_MEM_LOG_DIRTY_PAGES;
		vm_.add_region(busy);
		for (unsigned int v = 0; v < FUZZ_VCPUS; v++)
			vcpus_.push_back(&vm_.add_vcpu(v));
		vcpus_[0]->start(guest_fuzz_commands);
		vcpus_[0]->set_reg(reg::SCTLR_EL1, arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA);
		vcpus_[0]->expect_sync(FUZZ_SYNC_READY);
		for (unsigned int v = 0; v < FUZZ_VCPUS; v++)
			for (unsigned int r = 0; r < std::size(MTE_REGS); r++)
				model_.regs[v][r] = vcpus_[v]->get_reg(MTE_REGS[r]);

		Vcpu &b = vm_.add_vcpu(FUZZ_BUSY_VCPU);

		b.start(guest_fuzz_busy, FUZZ_BUSY_GPA, FUZZ_BUSY_PAGES * PAGE);
		b.set_reg(reg::SCTLR_EL1, arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA);
		busy_ = std::jthread([this, &b](std::stop_token stop) { run_busy(b, stop); });
	}

	const Model &model() const { return model_; }
	uint64_t busy_rounds() const { return busy_rounds_; }

	/* Runs op; on a result the model did not predict, says what differed. */
	std::optional<std::string> apply(const Op &op)
	{
		std::optional<std::string> why;

		try {
			why = dispatch(op);
		} catch (const std::exception &e) {
			why = std::string("unexpected failure: ") + e.what();
		}
		if (!why && busy_failed_) {
			const std::lock_guard lock(busy_mutex_);

			why = busy_failure_;
		}
		return why;
	}

	/* The op's own call, which may throw on a failure the model did not expect. */
	std::optional<std::string> dispatch(const Op &op)
	{
		switch (op.kind) {
		case Kind::copy:
			return copy(op);
		case Kind::set_slot:
			return set_slot(op);
		case Kind::dirty_log:
			return dirty_log(op);
		case Kind::reg_set:
		case Kind::reg_get:
		case Kind::reg_bad:
			return registers(op);
		case Kind::enable_cap:
			return enable_cap(op);
		case Kind::guest_stg:
		case Kind::guest_check:
			return guest(op);
		}
		return "unknown op";
	}

	/* Every granule of every memslot, by FROM_GUEST and by the guest's LDG. */
	std::optional<std::string> check_everything()
	{
		/* A short run may end before the busy vCPU's first round. */
		for (int ms = 0; !busy_rounds_ && !busy_failed_ && ms < BUSY_FIRST_ROUND_MS; ms++)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		if (!busy_rounds_ && !busy_failed_)
			return "the busy vCPU finished no round in " +
			       std::to_string(BUSY_FIRST_ROUND_MS) + " ms";
		for (unsigned int s = 0; s < FUZZ_SLOTS; s++) {
			if (!model_.slots[s].present)
				continue;
			Op op;

			op.kind = Kind::copy;
			op.ipa = Model::place_gpa(model_.slots[s].place);
			op.length = FUZZ_SLOT_PAGES * PAGE;
			op.flags = FROM_GUEST;
			if (auto why = apply(op))
				return "final FROM_GUEST of slot " + std::to_string(s + 1) + ": " +
				       *why;
			for (uint64_t p = 0; p < FUZZ_SLOT_PAGES; p++) {
				op = {};
				op.kind = Kind::guest_check;
				op.slot = s;
				op.page = p;
				if (auto why = apply(op))
					return "final guest check: " + *why;
			}
		}
		return std::nullopt;
	}

private:
	static std::string outcome(long value, int err)
	{
		return err ? errno_name(err) : "success (" + std::to_string(value) + ")";
	}

	std::optional<std::string> copy(const Op &op)
	{
		const bool to_guest = op.flags == TO_GUEST;
		long want = 0;
		int want_err = 0;
		uint64_t pages_done = 0;

		if ((op.flags != TO_GUEST && op.flags != FROM_GUEST) || op.reserved ||
		    op.ipa % PAGE || op.length % PAGE || op.length > MAX_LENGTH ||
		    op.ipa + op.length < op.ipa) {
			want_err = EINVAL;
		} else {
			for (; pages_done < op.length / PAGE; pages_done++) {
				const auto s = model_.slot_at(op.ipa + pages_done * PAGE);

				if (!s ||
				    (to_guest && (model_.slots[*s].flags & KVM_MEM_READONLY)) ||
				    !Buffers::page_ok(op, pages_done, to_guest))
					break;
			}
			want = static_cast<long>(pages_done * PAGE);
			if (!pages_done && op.length)
				want_err = EFAULT;
		}

		uint8_t *buf = buffers_.prepare(op);
		kvm_arm_copy_mte_tags args = {};

		args.guest_ipa = op.ipa;
		args.length = op.length;
		args.addr = buf;
		args.flags = op.flags;
		args.reserved[0] = op.reserved;
		const SysResult r = mte_copy_tags_raw(vm_, args);

		if (r.err != want_err || (!want_err && r.value != want))
			return "expected " + outcome(want, want_err) + ", got " + r.outcome();
		for (uint64_t j = 0; j < (want_err ? 0 : pages_done); j++) {
			const uint64_t gpa = op.ipa + j * PAGE;
			const unsigned int s = *model_.slot_at(gpa);
			const uint64_t page =
				(gpa - Model::place_gpa(model_.slots[s].place)) / PAGE;
			uint8_t *model_tags = &model_.tags[s][page * TAGS_PER_PAGE];
			const uint8_t *got = buf + j * TAGS_PER_PAGE;

			if (to_guest) {
				for (uint64_t g = 0; g < TAGS_PER_PAGE; g++)
					model_tags[g] = got[g] & arch::mte::TAG_MASK;
				if (model_.slots[s].flags & KVM_MEM_LOG_DIRTY_PAGES)
					model_.slots[s].dirty.insert(page);
				continue;
			}
			for (uint64_t g = 0; g < TAGS_PER_PAGE; g++)
				if (got[g] != model_tags[g])
					return "FROM_GUEST: granule " +
					       hex(gpa + g * arch::mte::GRANULE_SIZE) +
					       " has tag " + std::to_string(got[g]) +
					       ", the model says " + std::to_string(model_tags[g]);
		}
		return std::nullopt;
	}

	std::optional<std::string> set_slot(const Op &op)
	{
		Model::Slot &m = model_.slots[op.slot];
		int want_err = 0;

		if (!op.pages) {
			want_err = m.present ? 0 : EINVAL;
		} else if (!m.present && op.pages != FUZZ_SLOT_PAGES) {
			/*
			 * A size change replayed without the creation before it
			 * would create a smaller slot, which the model has not.
			 */
			return std::nullopt;
		} else if (!m.present) {
			want_err = model_.place_taken(op.place, op.slot) ? EEXIST : 0;
		} else if (op.pages != FUZZ_SLOT_PAGES ||
			   ((op.mem_flags ^ m.flags) & KVM_MEM_READONLY)) {
			want_err = EINVAL;
		} else if (op.place != m.place) {
			/* Moves keep their flags: the generator never moves and changes both. */
			if (op.mem_flags != m.flags)
				return std::nullopt;
			want_err = model_.place_taken(op.place, op.slot) ? EEXIST : 0;
		}

		kvm_userspace_memory_region r = {};

		r.slot = op.slot + 1;
		r.flags = op.mem_flags;
		r.guest_phys_addr = Model::place_gpa(op.place);
		r.memory_size = op.pages * PAGE;
		r.userspace_addr = reinterpret_cast<uint64_t>(backing_[op.slot].get());
		const SysResult res = vm_.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &r);

		if (res.err != want_err)
			return "expected " + outcome(0, want_err) + ", got " + res.outcome();
		if (want_err)
			return std::nullopt;
		if (!op.pages) {
			m = Model::Slot();
			return std::nullopt;
		}
		/* A new bitmap when logging starts; a move keeps the old one. */
		if (!m.present || ((op.mem_flags ^ m.flags) & KVM_MEM_LOG_DIRTY_PAGES))
			m.dirty.clear();
		m.present = true;
		m.place = op.place;
		m.flags = op.mem_flags;
		return std::nullopt;
	}

	/* KVM_GET_DIRTY_LOG of a slot of at most 64 pages, as every slot here is. */
	SysResult get_dirty_log(uint32_t slot, uint64_t &bitmap) const
	{
		static_assert(FUZZ_SLOT_PAGES <= 64 && FUZZ_BUSY_PAGES <= 64);
		kvm_dirty_log log = {};

		log.slot = slot;
		log.dirty_bitmap = &bitmap;
		return vm_.ioctl_raw(KVM_GET_DIRTY_LOG, &log);
	}

	std::optional<std::string> dirty_log(const Op &op)
	{
		Model::Slot &m = model_.slots[op.slot];
		const bool logged = m.present && (m.flags & KVM_MEM_LOG_DIRTY_PAGES);
		uint64_t bitmap = 0;
		const SysResult r = get_dirty_log(op.slot + 1, bitmap);

		if (r.err != (logged ? 0 : ENOENT))
			return "expected " + outcome(0, logged ? 0 : ENOENT) + ", got " +
			       r.outcome();
		if (!logged)
			return std::nullopt;

		uint64_t want = 0;

		for (uint64_t p : m.dirty)
			want |= uint64_t{1} << p;
		m.dirty.clear();
		if (bitmap != want)
			return "dirty bitmap " + hex(bitmap) + ", the model says " + hex(want);
		return std::nullopt;
	}

	std::optional<std::string> registers(const Op &op)
	{
		Vcpu &v = *vcpus_[op.vcpu];
		uint64_t val = 0;

		if (op.kind == Kind::reg_bad) {
			const SysResult r = v.get_reg_raw(NO_SUCH_REG, &val);

			if (r.err != ENOENT)
				return "expected ENOENT, got " + r.outcome();
			return std::nullopt;
		}
		if (op.kind == Kind::reg_set) {
			const SysResult r = v.set_reg_raw(MTE_REGS[op.reg].id, op.value);

			if (!r.ok())
				return "expected success, got " + r.outcome();
			model_.regs[op.vcpu][op.reg] = op.value;
			return std::nullopt;
		}

		const SysResult r = v.get_reg_raw(MTE_REGS[op.reg].id, &val);

		if (!r.ok())
			return "expected success, got " + r.outcome();
		if (val != model_.regs[op.vcpu][op.reg])
			return std::string(MTE_REGS[op.reg].name) + " is " + hex(val) +
			       ", the model says " + hex(model_.regs[op.vcpu][op.reg]);
		return std::nullopt;
	}

	/* Refused once the VM has vCPUs, and for any flags; arguments are not looked at. */
	std::optional<std::string> enable_cap(const Op &op)
	{
		const bool fuzzed = op.cap_vm == CapVm::fuzzed;
		const int want_err = fuzzed || op.flags ? EINVAL : 0;
		const SysResult r = (fuzzed ? vm_ : no_vcpus_)
					    .enable_cap(KVM_CAP_ARM_MTE, op.flags, {op.value});

		if (r.err != want_err || (!want_err && r.value))
			return "expected " + outcome(0, want_err) + ", got " + r.outcome();
		return std::nullopt;
	}

	/*
	 * The busy vCPU's thread: a round, its LDG mismatches, then the dirty
	 * log, which must have every page of the round's STG, until stopped or
	 * a failure is recorded for apply() to report.
	 */
	void run_busy(Vcpu &v, const std::stop_token &stop)
	{
		std::string why;

		try {
			for (uint64_t round = 1; !stop.stop_requested() && why.empty(); round++) {
				const Ucall u = v.run();

				if (u.cmd != UcallCmd::sync ||
				    u.args[UCALL_SYNC_STAGE] != FUZZ_SYNC_BUSY_ROUND) {
					why = "guest: " + u.describe();
					break;
				}
				if (const uint64_t bad = vm_.guest_var(&fuzz_busy_mismatches)) {
					why = "LDG: " + std::to_string(bad) +
					      " granules lost their tags in round " +
					      std::to_string(round) + ", the first at " +
					      hex(vm_.guest_var(&fuzz_busy_first_mismatch));
					break;
				}

				uint64_t bitmap = 0;

				check(get_dirty_log(FUZZ_BUSY_SLOT, bitmap));
				if (bitmap != FUZZ_BUSY_ALL_PAGES)
					why = "dirty log after round " + std::to_string(round) +
					      " is " + hex(bitmap) + ", every page (" +
					      hex(FUZZ_BUSY_ALL_PAGES) + ") had tag stores";
				else
					busy_rounds_++;
				std::this_thread::sleep_for(BUSY_PAUSE);
			}
		} catch (const std::exception &e) {
			why = std::string("unexpected failure: ") + e.what();
		}
		if (why.empty())
			return;

		const std::lock_guard lock(busy_mutex_);

		busy_failure_ = "busy vCPU: " + why;
		busy_failed_ = true;
	}

	std::optional<std::string> guest(const Op &op)
	{
		Model::Slot &m = model_.slots[op.slot];
		const bool stg = op.kind == Kind::guest_stg;

		/* The guest only touches memory it has, and stores only where it may. */
		if (!m.present || (stg && (m.flags & KVM_MEM_READONLY)))
			return std::nullopt;

		uint8_t *model_tags = &model_.tags[op.slot][op.page * TAGS_PER_PAGE];
		uint8_t *tags = vm_.guest_var(&fuzz_tags);

		for (uint64_t g = 0; g < TAGS_PER_PAGE; g++)
			tags[g] = stg ? seeded_tag(op.seed, g) : model_tags[g];
		vm_.guest_var(&fuzz_cmd) = static_cast<uint64_t>(stg ? FuzzGuestCmd::stg_page
								     : FuzzGuestCmd::check_page);
		vm_.guest_var(&fuzz_page) = Model::place_gpa(m.place) + op.page * PAGE;
		vm_.guest_var(&fuzz_mismatches) = 0;

		const Ucall u = vcpus_[0]->run();

		if (u.cmd != UcallCmd::sync || u.args[UCALL_SYNC_STAGE] != FUZZ_SYNC_READY)
			return "guest: " + u.describe();
		if (stg) {
			std::copy(tags, tags + TAGS_PER_PAGE, model_tags);
			if (m.flags & KVM_MEM_LOG_DIRTY_PAGES)
				m.dirty.insert(op.page);
		} else if (vm_.guest_var(&fuzz_mismatches)) {
			return "guest LDG: " + std::to_string(vm_.guest_var(&fuzz_mismatches)) +
			       " granules differ from the model, the first at " +
			       hex(vm_.guest_var(&fuzz_first_mismatch));
		}
		return std::nullopt;
	}

	Kvm kvm_;
	Vm vm_;
	/* Where enabling the capability succeeds, as often as asked. */
	Vm no_vcpus_;
	std::vector<Vcpu *> vcpus_;
	std::array<Mapping, FUZZ_SLOTS> backing_;
	Buffers buffers_;
	Model model_;
	std::atomic<uint64_t> busy_rounds_{0};
	std::atomic<bool> busy_failed_{false};
	std::mutex busy_mutex_;
	std::string busy_failure_;
	/* Last: stopped and joined before the VM it runs in goes. */
	std::jthread busy_;
};

/* Random calls, mostly valid for the model's state, with every edge case now and then. */
class Generator
{
public:
	explicit Generator(uint64_t seed) : rng_(seed) {}

	Op next(const Model &m)
	{
		Op op;
		const unsigned int roll = below(100);

		op.seed = rng_();
		if (roll < 45) {
			random_copy(op);
		} else if (roll < 60) {
			random_slot_change(op, m);
		} else if (roll < 65) {
			op.kind = Kind::dirty_log;
			op.slot = below(FUZZ_SLOTS);
		} else if (roll < 67) {
			random_enable_cap(op);
		} else if (roll < 80) {
			op.kind = below(10) == 0 ? Kind::reg_bad
				  : below(2)	 ? Kind::reg_set
						 : Kind::reg_get;
			op.vcpu = below(FUZZ_VCPUS);
			op.reg = below(std::size(MTE_REGS));
			op.value = rng_() & MTE_REG_WRITABLE[op.reg];
		} else {
			op.kind = below(2) ? Kind::guest_stg : Kind::guest_check;
			op.slot = below(FUZZ_SLOTS);
			op.page = below(FUZZ_SLOT_PAGES);
		}
		return op;
	}

private:
	unsigned int below(uint64_t n) { return static_cast<unsigned int>(rng_() % n); }

	void random_copy(Op &op)
	{
		const uint64_t first = below(FUZZ_AREA / PAGE + 2 * FUZZ_MARGIN_PAGES);

		op.kind = Kind::copy;
		op.ipa = FUZZ_GPA - FUZZ_MARGIN_PAGES * PAGE + first * PAGE;
		op.length = below(FUZZ_MAX_COPY_PAGES + 1) * PAGE;
		op.flags = below(2) ? TO_GUEST : FROM_GUEST;
		if (below(5))
			return;
		/* One edge case in five copies. */
		switch (below(10)) {
		case 0:
			op.ipa += 1 + below(PAGE - 1);
			break;
		case 1:
			op.length += 1 + below(PAGE - 1);
			break;
		case 2:
			op.flags = 2 + below(3) + (below(2) ? uint64_t{1} << 63 : 0);
			break;
		case 3:
			op.reserved = rng_() | 1;
			break;
		case 4:
			op.ipa = ~uint64_t{0} & ~(PAGE - 1);
			op.length = (1 + below(4)) * PAGE;
			break;
		case 5:
			op.length = MAX_LENGTH + PAGE * (1 + below(3));
			break;
		case 6:
			op.length = 0;
			break;
		case 7:
			op.buf = Buffer::unmapped;
			break;
		case 8:
			op.buf = Buffer::read_only;
			break;
		default:
			op.buf = Buffer::ends_early;
			op.ok_pages = below(FUZZ_MAX_COPY_PAGES);
			break;
		}
	}

	/* Flags are mostly 0, so the VM without vCPUs mostly accepts. */
	void random_enable_cap(Op &op)
	{
		op.kind = Kind::enable_cap;
		op.cap_vm = below(2) ? CapVm::fuzzed : CapVm::no_vcpus;
		op.flags = below(4) ? 0 : (uint64_t{1} << below(32));
		op.value = below(2) ? 0 : rng_();
	}

	void random_slot_change(Op &op, const Model &m)
	{
		op.kind = Kind::set_slot;
		op.slot = below(FUZZ_SLOTS);
		op.place = below(FUZZ_PLACES);
		op.pages = FUZZ_SLOT_PAGES;

		const Model::Slot &s = m.slots[op.slot];

		if (!s.present) {
			/* Create, read-only one time in four, logged one time in three. */
			op.mem_flags = (below(4) ? 0 : KVM_MEM_READONLY) |
				       (below(3) ? 0 : KVM_MEM_LOG_DIRTY_PAGES);
			if (!below(10))
				op.pages = 0; /* deleting what is not there */
			return;
		}
		op.mem_flags = s.flags;
		switch (below(6)) {
		case 0:
			op.pages = 0;
			break;
		case 1:
		case 2:
			break; /* a move, or nothing when the place is the same */
		case 3:
			op.place = s.place;
			op.mem_flags ^= KVM_MEM_LOG_DIRTY_PAGES;
			break;
		case 4:
			op.place = s.place;
			op.mem_flags ^= KVM_MEM_READONLY;
			break;
		default:
			op.place = s.place;
			op.pages = FUZZ_SLOT_PAGES / 2;
			break;
		}
	}

	std::mt19937_64 rng_;
};

uint64_t env_number(const char *name, uint64_t fallback)
{
	const char *v = std::getenv(name);

	return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

/* Replays ops in a new VM: the index of the first op that mismatches, with why. */
std::optional<std::pair<size_t, std::string>> replay(const std::vector<Op> &ops)
{
	Fuzzer f;

	for (size_t i = 0; i < ops.size(); i++)
		if (auto why = f.apply(ops[i]))
			return std::make_pair(i, *why);
	if (auto why = f.check_everything())
		return std::make_pair(ops.size(), *why);
	return std::nullopt;
}

/* Delta debugging: drop chunks of ops while the replay still fails. */
std::vector<Op> minimise(std::vector<Op> ops)
{
	unsigned int replays = 0;

	for (size_t chunk = ops.size() / 2; chunk >= 1 && replays < MAX_REPLAYS; chunk /= 2) {
		for (size_t start = 0; start < ops.size() && replays < MAX_REPLAYS;) {
			std::vector<Op> trial = ops;

			trial.erase(trial.begin() + start,
				    trial.begin() + std::min(ops.size(), start + chunk));
			replays++;
			if (replay(trial))
				ops = std::move(trial);
			else
				start += chunk;
		}
	}
	return ops;
}

} // namespace

/*
 * Every call of a seeded random run gives what the model predicts, and at
 * the end FROM_GUEST and the guest's LDG agree with it on every granule.
 */
TEST_TIMEOUT(mte_fuzz, calls_match_the_model, 600)
{
	const uint64_t seed = env_number("KTEST_FUZZ_SEED", DEFAULT_SEED);
	const uint64_t calls = env_number("KTEST_FUZZ_CALLS", DEFAULT_CALLS);
	Fuzzer f;
	Generator gen(seed);
	std::vector<Op> ops;
	std::map<std::string, uint64_t> per_kind;
	std::optional<std::string> why;

	ktest::diag("seed " + hex(seed) + ", " + std::to_string(calls) + " calls");
	for (uint64_t i = 0; i < calls && !why; i++) {
		ops.push_back(gen.next(f.model()));
		per_kind[kind_name(ops.back().kind)]++;
		why = f.apply(ops.back());
	}
	if (!why)
		why = f.check_everything();

	std::string counts;
	for (const auto &[kind, n] : per_kind)
		counts += (counts.empty() ? "" : ", ") + kind + " " + std::to_string(n);
	ktest::diag("calls per kind: " + counts);
	ktest::diag("busy vCPU: " + std::to_string(f.busy_rounds()) + " rounds of " +
		    std::to_string(FUZZ_BUSY_PAGES * TAGS_PER_PAGE) +
		    " tags stored and checked, each with its full dirty log");
	if (!why)
		return;

	ktest::record_failure(KTEST_HERE, "call " + std::to_string(ops.size()) + " (" +
						  ops.back().describe() + "): " + *why);
	const std::vector<Op> shortest = minimise(ops);
	const auto again = replay(shortest);

	ktest::diag("seed " + hex(seed) + ": shortest failing sequence, " +
		    std::to_string(shortest.size()) + " calls, then the final check:");
	for (const Op &op : shortest)
		ktest::diag("  " + op.describe());
	if (again)
		ktest::diag("  fails with: " + again->second);
}

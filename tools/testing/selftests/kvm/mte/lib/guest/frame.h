/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Layout of the exception frame that the guest vectors push on the stack.
 * Plain preprocessor constants so that vectors.S and the C++ struct in
 * guest.hpp (which static_asserts against these) cannot drift apart.
 */
#ifndef KVM_MTE_GUEST_FRAME_H
#define KVM_MTE_GUEST_FRAME_H

/* Each slot holds one 64-bit register. */
#define GUEST_FRAME_REG_SIZE 8
#define GUEST_FRAME_X(n) (GUEST_FRAME_REG_SIZE * (n))
#define GUEST_FRAME_SP GUEST_FRAME_X(31)
#define GUEST_FRAME_ELR GUEST_FRAME_X(32)
#define GUEST_FRAME_SPSR GUEST_FRAME_X(33)
#define GUEST_FRAME_ESR GUEST_FRAME_X(34)
#define GUEST_FRAME_FAR GUEST_FRAME_X(35)
/* Multiple of 16 so that SP stays aligned while the frame is live. */
#define GUEST_FRAME_SIZE GUEST_FRAME_X(36)

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Layout of the exception frame that the guest vectors push on the stack.
 * Plain preprocessor constants so that vectors.S and the C++ struct in
 * guest.hpp (which static_asserts against these) cannot drift apart.
 */
#ifndef KVM_MTE_GUEST_FRAME_H
#define KVM_MTE_GUEST_FRAME_H

#define GUEST_FRAME_X(n) ((n)*8)
#define GUEST_FRAME_SP (31 * 8)
#define GUEST_FRAME_ELR (32 * 8)
#define GUEST_FRAME_SPSR (33 * 8)
#define GUEST_FRAME_ESR (34 * 8)
#define GUEST_FRAME_FAR (35 * 8)
/* Multiple of 16 so that SP stays aligned while the frame is live. */
#define GUEST_FRAME_SIZE (36 * 8)

#endif

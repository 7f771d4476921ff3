/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loss.h - what the lab's loss programs and their Rust loader agree on.
 *
 * The programs (loss.bpf.c) drop a share of the IPv4/TCP frames crossing
 * the lab peer's interface: loss_xdp on arrival (XDP, appliance -> server),
 * loss_egress on departure (tc clsact egress, server -> appliance). ARP and
 * everything that is not IPv4/TCP always passes.
 *
 * Maps (names are what userspace looks up after load, and what
 * `bench lab status` looks up on the attached program):
 *
 *   loss_config    ARRAY, 1 entry (key 0), value struct loss_config.
 *                  Zeros after load: nothing is dropped.
 *   loss_counters  PERCPU_ARRAY, LOSS_NR_COUNTERS entries, key enum
 *                  loss_counter, value __u64 (one per CPU; userspace sums).
 *
 * Counters: *_TCP counts the IPv4/TCP frames a program saw, *_DROPPED
 * those it dropped; *_TCP - *_DROPPED passed.
 */
#ifndef QUICKDRAW_LOSS_H
#define QUICKDRAW_LOSS_H

#include <linux/types.h>

/* Value of the loss_config map's only entry. 4 bytes. */
struct loss_config {
	/* 0..=100: an IPv4/TCP frame is dropped when
	 * bpf_get_prandom_u32() % 100 < pct (100: all of them). */
	__u32 pct;
};

/* Indices of the loss_counters map. */
enum loss_counter {
	LOSS_XDP_TCP = 0,
	LOSS_XDP_DROPPED = 1,
	LOSS_EGRESS_TCP = 2,
	LOSS_EGRESS_DROPPED = 3,
	LOSS_NR_COUNTERS = 4,
};

#endif /* QUICKDRAW_LOSS_H */

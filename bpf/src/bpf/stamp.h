/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stamp.h - what the tc timestamping programs and their Rust loader agree on.
 *
 * Struct layouts, map names and sizes and counter indices are defined here
 * once. The Rust side (bpf/src/record.rs, filter.rs, counters.rs) encodes the
 * same layouts by hand; its tests check them against the sizes the kernel
 * reports for the loaded maps and for the records a test run emits.
 *
 * Maps (names are what userspace looks up after load):
 *
 *   stamps          RINGBUF, STAMP_RING_BYTES by default (userspace may set
 *                   another power-of-two multiple of the page size before
 *                   load). One struct wire_stamp per stamped frame.
 *   stamp_config    ARRAY, 1 entry (key 0), value struct stamp_config.
 *                   Written by userspace at any time, attached or not. All
 *                   zeros (the state after load) stamps every IPv4/TCP frame.
 *   stamp_counters  PERCPU_ARRAY, STAMP_NR_COUNTERS entries, key enum
 *                   stamp_counter, value __u64 (one per CPU; userspace sums).
 *
 * Counters, per frame either program sees:
 *
 *   seen      = stamped + lost + skipped + malformed   (always)
 *   stamped   records submitted to the ring.
 *   lost      frames that matched but found the ring full: no record.
 *   skipped   not IPv4/TCP (ARP, IPv6, UDP, VLAN-tagged, fragments), or
 *             outside the configured filter.
 *   malformed truncated or inconsistent Ethernet, IPv4 or TCP headers.
 *
 * Whatever they see, both programs return TC_ACT_UNSPEC (the next filter
 * runs, the frame goes on) and change nothing in
 * the frame.
 */
#ifndef QUICKDRAW_STAMP_H
#define QUICKDRAW_STAMP_H

#include <linux/types.h>

/* Default size of the stamps ring: 1 MiB, about 21,000 records. */
#define STAMP_RING_BYTES (1 << 20)

/* Values of wire_stamp.direction. */
enum stamp_direction {
	/* Arriving at the interface (tc ingress). */
	STAMP_INGRESS = 0,
	/* Leaving through the interface (tc egress). */
	STAMP_EGRESS = 1,
};

/*
 * One record in the stamps ring: one IPv4/TCP frame as it crossed the
 * interface. 40 bytes, no implicit padding.
 *
 * Byte order: fields copied from the headers (addresses, ports, seq, ack)
 * are in network byte order, as the frame carries them; the others are in
 * host byte order.
 */
struct wire_stamp {
	/* bpf_ktime_get_ns() when the program started on the frame:
	 * CLOCK_MONOTONIC, the clock of userspace's clock_gettime(). */
	__u64 ns;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack_seq;
	/* TCP payload bytes: IPv4 total length - IPv4 header (with options) -
	 * TCP header (with options). For a GSO super-packet (veth passes
	 * them whole), the payload of all its segments. */
	__u16 payload_len;
	/* TCP header byte 13: CWR ECE URG ACK PSH RST SYN FIN (bit 7..0). */
	__u8 tcp_flags;
	/* enum stamp_direction. */
	__u8 direction;
	/* skb->ifindex: the interface the frame crossed. */
	__u32 ifindex;
	/* skb->len: the whole frame from the Ethernet header on, as seen. */
	__u32 frame_len;
};

/*
 * Value of the stamp_config map's only entry. 12 bytes.
 *
 * A frame is stamped when it is IPv4/TCP and
 *   ((saddr & mask) == net || (daddr & mask) == net)   (mask 0: any address)
 *   && (port == 0 || sport == port || dport == port)
 *   && (!data_only || payload_len > 0).
 */
struct stamp_config {
	/* Network byte order; net has no bits outside mask. */
	__be32 net;
	__be32 mask;
	/* Network byte order; 0 = any port. */
	__be16 port;
	/* 1 = only frames that carry TCP payload. */
	__u8 data_only;
	__u8 reserved;
};

/* Indices of the stamp_counters map. */
enum stamp_counter {
	STAMP_SEEN = 0,
	STAMP_STAMPED = 1,
	STAMP_LOST = 2,
	STAMP_SKIPPED = 3,
	STAMP_MALFORMED = 4,
	STAMP_NR_COUNTERS = 5,
};

#endif /* QUICKDRAW_STAMP_H */

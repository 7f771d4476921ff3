/* SPDX-License-Identifier: Apache-2.0 */
/*
 * steer.h - what the XDP steering program and its Rust loader agree on.
 *
 * Struct layouts, map names and sizes and counter indices are defined here
 * once. The Rust side (bpf/src/) encodes the same layouts by hand; its tests
 * check them against the key and value sizes the kernel reports for the
 * loaded maps, so a change here that is not mirrored there fails a test.
 *
 * Maps (names are what userspace looks up after load):
 *
 *   flows     HASH, STEER_MAX_FLOWS entries, key struct flow_key, value __u8
 *             (1 = owned). The TCP flows the appliance owns.
 *   udp_ports HASH, STEER_MAX_UDP_PORTS entries, key struct udp_key, value
 *             __u8 (1 = owned). Event feeds: IPv4/UDP datagrams to these
 *             destination address:port pairs (the appliance's address, or a
 *             multicast group) are steered.
 *   xsks      XSKMAP, STEER_MAX_QUEUES entries, key __u32 rx queue index,
 *             value the AF_XDP socket fd bound to that queue.
 *   config    ARRAY, 1 entry (key 0), value struct steer_config. Written by
 *             userspace at any time, before or after attach.
 *   counters  PERCPU_ARRAY, STEER_NR_COUNTERS entries, key enum
 *             steer_counter, value __u64 (one per CPU; userspace sums).
 *
 * Counters, per frame the program sees:
 *
 *   seen      = steered + passed            (always, every frame is one or
 *                                            the other)
 *   steered   frames bpf_redirect_map() accepted (XDP_REDIRECT). An owned
 *             frame arriving on a queue whose xsks slot is empty falls back
 *             to XDP_PASS and is counted as passed, not steered.
 *   passed    frames returned XDP_PASS to the kernel stack.
 *   malformed subset of passed: truncated or inconsistent Ethernet, IPv4,
 *             TCP, UDP or ARP headers. Malformed frames are never dropped; the
 *             kernel stack decides what to do with them.
 */
#ifndef QUICKDRAW_STEER_H
#define QUICKDRAW_STEER_H

#include <linux/types.h>

/* Map sizes. */
#define STEER_MAX_FLOWS 4096
#define STEER_MAX_QUEUES 64
#define STEER_MAX_UDP_PORTS 64

/*
 * Key of the flows map: an IPv4/TCP 4-tuple as seen on ingress, every field
 * in network byte order. remote = the packet's source, local = its
 * destination (the appliance). 12 bytes, no padding.
 */
struct flow_key {
	__be32 remote_ip;
	__be32 local_ip;
	__be16 remote_port;
	__be16 local_port;
};

/*
 * Key of the udp_ports map: an IPv4/UDP destination as seen on ingress, in
 * network byte order, and two zero bytes of padding (set them to 0: they are
 * part of the hashed key). 8 bytes.
 */
struct udp_key {
	__be32 local_ip;
	__be16 local_port;
	__u16 zero;
};

/* Value of the config map's only entry. 4 bytes. */
struct steer_config {
	/* The appliance's own IPv4 address, network byte order. ARP whose
	 * target protocol address equals it is steered. 0 = unset: no ARP is
	 * steered. */
	__be32 appliance_ip;
};

/* Indices of the counters map. */
enum steer_counter {
	STEER_SEEN = 0,
	STEER_STEERED = 1,
	STEER_PASSED = 2,
	STEER_MALFORMED = 3,
	STEER_NR_COUNTERS = 4,
};

#endif /* QUICKDRAW_STEER_H */

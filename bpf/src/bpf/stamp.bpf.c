// SPDX-License-Identifier: Apache-2.0
/*
 * stamp.bpf.c - tc (clsact) programs that timestamp the IPv4/TCP frames
 * crossing an interface, one on ingress and one on egress, into a ring
 * buffer: the "wire" side of quickdraw's trigger->wire measurement, taken
 * outside the appliance (on the lab peer's interface).
 *
 * The timestamp is bpf_ktime_get_ns() read first thing, before any parsing:
 * CLOCK_MONOTONIC, the clock the datapath reads with clock_gettime(), so the
 * two can be subtracted.
 *
 * Stamped: IPv4/TCP frames (IPv4 and TCP options allowed, Ethernet padding
 * allowed) that pass the filter in the stamp_config map. Not stamped
 * (counted as skipped): everything else, including IPv4 fragments and
 * VLAN-tagged frames. Truncated or inconsistent headers are counted as
 * malformed. Every frame is returned TC_ACT_UNSPEC, unchanged: "no verdict,
 * go on", so a filter after this one on the same hook (the lab's loss
 * program, say) still runs; TC_ACT_OK would end the filter chain here.
 *
 * Packet reads are direct (skb->data .. skb->data_end), each guarded by a
 * data_end check. When the headers are not all in the linear part of the skb
 * (its head), bpf_skb_pull_data() makes them linear first; it moves no byte
 * of the frame, but may copy a cloned head (TCP's egress skbs are clones).
 * The kernel's own TCP builds its headers in the head, so on the lab's veth
 * this never happens in practice.
 *
 * Layouts, map names, sizes and counter indices live in stamp.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "stamp.h"

/* Not GPL-compatible; none of the helpers used here is GPL-only. */
char LICENSE[] SEC("license") = "Apache-2.0";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STAMP_RING_BYTES);
} stamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stamp_config);
} stamp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAMP_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} stamp_counters SEC(".maps");

/* From the kernel's include/net/ip.h (not uapi): IPv4 frag_off bits. */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Offset of the flags byte in the TCP header. */
#define TCP_FLAGS_OFFSET 13

/* What parse() decided about a frame. */
enum stamp_class {
	CLASS_STAMP,
	CLASS_SKIP,
	CLASS_MALFORMED,
};

static __always_inline void count(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&stamp_counters, &index);

	/* Per-CPU slot, and tc programs run with migration disabled. */
	if (n)
		*n += 1;
}

/*
 * Makes the first len bytes of the frame readable through skb->data when
 * the frame has them: 0 if they are (the caller still checks data_end, for
 * the verifier and for us), -1 if the frame is shorter. Invalidates every
 * packet pointer derived before the call.
 */
static __always_inline int linear(struct __sk_buff *skb, __u32 len)
{
	if ((long)skb->data + len <= (long)skb->data_end)
		return 0;
	if (len > skb->len)
		return -1;
	return bpf_skb_pull_data(skb, len) ? -1 : 0;
}

/* An IPv4/UDP datagram (the IPv4 header checked by the caller): stamped only
 * when the config asks for UDP. */
static __always_inline int parse_udp(struct __sk_buff *skb,
				     struct wire_stamp *rec, __u32 ihl_len,
				     __u32 tot_len)
{
	struct stamp_config *cfg;
	struct udphdr *udp;
	struct iphdr *ip;
	void *data, *data_end;
	__u32 zero = 0, len;

	cfg = bpf_map_lookup_elem(&stamp_config, &zero);
	if (!cfg || !cfg->udp)
		return CLASS_SKIP;
	if (tot_len < ihl_len + sizeof(*udp))
		return CLASS_MALFORMED;
	if (linear(skb, sizeof(struct ethhdr) + ihl_len + sizeof(*udp)))
		return CLASS_MALFORMED;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + sizeof(struct ethhdr);
	udp = data + sizeof(struct ethhdr) + ihl_len;
	if ((void *)(ip + 1) > data_end || (void *)(udp + 1) > data_end)
		return CLASS_MALFORMED;
	len = bpf_ntohs(udp->len);
	if (len < sizeof(*udp) || len > tot_len - ihl_len)
		return CLASS_MALFORMED;
	rec->saddr = ip->saddr;
	rec->daddr = ip->daddr;
	rec->sport = udp->source;
	rec->dport = udp->dest;
	rec->payload_len = len - sizeof(*udp);
	return CLASS_STAMP;
}

/* Fills rec (all but ns, direction) from the frame, or says why not. */
static __always_inline int parse(struct __sk_buff *skb, struct wire_stamp *rec)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 ihl_len, tot_len, tcp_len, l3_len;

	if (linear(skb, sizeof(*eth)))
		return CLASS_MALFORMED;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return CLASS_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return CLASS_SKIP; /* IPv6, ARP, VLAN tags, ... */

	if (linear(skb, sizeof(*eth) + sizeof(*ip)))
		return CLASS_MALFORMED;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return CLASS_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return CLASS_MALFORMED;
	ihl_len = ip->ihl * 4; /* 20..60 */
	tot_len = bpf_ntohs(ip->tot_len);
	l3_len = skb->len - sizeof(*eth);
	/* The frame may carry Ethernet padding after tot_len, never less. */
	if (tot_len < ihl_len || tot_len > l3_len)
		return CLASS_MALFORMED;
	/* Only first fragments carry a TCP header, and we reassemble none. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return CLASS_SKIP;
	if (ip->protocol == IPPROTO_UDP)
		return parse_udp(skb, rec, ihl_len, tot_len);
	if (ip->protocol != IPPROTO_TCP)
		return CLASS_SKIP;
	if (tot_len < ihl_len + sizeof(*tcp))
		return CLASS_MALFORMED;

	/* The TCP header follows the IPv4 options. */
	if (linear(skb, sizeof(*eth) + ihl_len + sizeof(*tcp)))
		return CLASS_MALFORMED;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + sizeof(*eth);
	tcp = data + sizeof(*eth) + ihl_len;
	if ((void *)(ip + 1) > data_end || (void *)(tcp + 1) > data_end)
		return CLASS_MALFORMED;
	tcp_len = tcp->doff * 4;
	if (tcp_len < sizeof(*tcp) || tcp_len > tot_len - ihl_len)
		return CLASS_MALFORMED;

	rec->saddr = ip->saddr;
	rec->daddr = ip->daddr;
	rec->sport = tcp->source;
	rec->dport = tcp->dest;
	rec->seq = tcp->seq;
	rec->ack_seq = tcp->ack_seq;
	rec->payload_len = tot_len - ihl_len - tcp_len;
	rec->tcp_flags = ((__u8 *)tcp)[TCP_FLAGS_OFFSET];
	return CLASS_STAMP;
}

static __always_inline int wanted(const struct wire_stamp *rec)
{
	struct stamp_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&stamp_config, &zero);
	if (!cfg)
		return 1;
	if ((rec->saddr & cfg->mask) != cfg->net &&
	    (rec->daddr & cfg->mask) != cfg->net)
		return 0;
	if (cfg->port && rec->sport != cfg->port && rec->dport != cfg->port)
		return 0;
	if (cfg->data_only && rec->payload_len == 0)
		return 0;
	return 1;
}

static __always_inline int stamp(struct __sk_buff *skb, __u8 direction)
{
	__u64 now = bpf_ktime_get_ns();
	struct wire_stamp rec = {};
	struct wire_stamp *slot;
	int class;

	count(STAMP_SEEN);
	class = parse(skb, &rec);
	if (class == CLASS_STAMP && !wanted(&rec))
		class = CLASS_SKIP;
	if (class == CLASS_SKIP) {
		count(STAMP_SKIPPED);
		return TC_ACT_UNSPEC;
	}
	if (class == CLASS_MALFORMED) {
		count(STAMP_MALFORMED);
		return TC_ACT_UNSPEC;
	}

	rec.ns = now;
	rec.direction = direction;
	rec.ifindex = skb->ifindex;
	rec.frame_len = skb->len;
	slot = bpf_ringbuf_reserve(&stamps, sizeof(*slot), 0);
	if (!slot) {
		count(STAMP_LOST);
		return TC_ACT_UNSPEC;
	}
	__builtin_memcpy(slot, &rec, sizeof(rec));
	/* No wakeup: it would queue irq_work and wake the collector on another CPU (an
	 * IPI, a VM exit on a guest) in the stamped frame's own path, after the stamp and
	 * before the frame goes on. On egress that lands inside what is measured (event
	 * wire -> appliance); on ingress it lengthens the sender's kick. The collector
	 * polls the ring instead (Stamper::poll). */
	bpf_ringbuf_submit(slot, BPF_RB_NO_WAKEUP);
	count(STAMP_STAMPED);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int stamp_ingress(struct __sk_buff *skb)
{
	return stamp(skb, STAMP_INGRESS);
}

SEC("tc")
int stamp_egress(struct __sk_buff *skb)
{
	return stamp(skb, STAMP_EGRESS);
}

// SPDX-License-Identifier: Apache-2.0
/*
 * loss.bpf.c - fault injection for the lab: drop a share of the IPv4/TCP
 * frames crossing an interface, in both directions. The lab's kernel has no
 * sch_netem and no tc matchall, so this is how `bench lab loss PCT` works.
 *
 *   loss_xdp     XDP on the peer's interface: frames arriving (appliance ->
 *                server) are dropped before anything else on the peer sees
 *                them, the tc stamper included.
 *   loss_egress  tc clsact egress filter on the same interface: frames
 *                leaving (server -> appliance). Attached after the stamper
 *                (a higher priority number), so a dropped response frame is
 *                still stamped: it left the server and was lost on the way.
 *
 * Dropped: IPv4 frames whose protocol is TCP, each with probability pct/100
 * (bpf_get_prandom_u32() % 100 < pct). Never dropped: ARP, IPv6, VLAN-tagged
 * frames, ICMP, UDP, anything truncated. The tc program returns
 * TC_ACT_UNSPEC for a frame it keeps (the next filter, if any, runs; the
 * frame goes on) and TC_ACT_SHOT for one it drops.
 *
 * Layouts, map names and counter indices live in loss.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "loss.h"

/* Not GPL-compatible; none of the helpers used here is GPL-only. */
char LICENSE[] SEC("license") = "Apache-2.0";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_config);
} loss_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} loss_counters SEC(".maps");

/* Offset of the protocol byte in an IPv4 header. */
#define IP_PROTOCOL_OFFSET 9

static __always_inline void count(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&loss_counters, &index);

	/* Per-CPU slot; XDP and tc programs run with migration disabled. */
	if (n)
		*n += 1;
}

/* Whether to drop an IPv4/TCP frame now, by the configured share. */
static __always_inline int unlucky(void)
{
	struct loss_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&loss_config, &zero);
	if (!cfg || cfg->pct == 0)
		return 0;
	return bpf_get_prandom_u32() % 100 < cfg->pct;
}

/* 1 for an IPv4 frame carrying TCP, given its ethertype and IPv4 protocol. */
static __always_inline int ipv4_tcp(__be16 proto, __u8 ip_protocol)
{
	return proto == bpf_htons(ETH_P_IP) && ip_protocol == IPPROTO_TCP;
}

SEC("xdp")
int loss_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS; /* ARP fits in less; too short for IPv4 */
	if (!ipv4_tcp(eth->h_proto, ip->protocol))
		return XDP_PASS;
	count(LOSS_XDP_TCP);
	if (!unlucky())
		return XDP_PASS;
	count(LOSS_XDP_DROPPED);
	return XDP_DROP;
}

SEC("tc")
int loss_egress(struct __sk_buff *skb)
{
	__u8 ip_protocol;

	/* skb->protocol is the ethertype, in network byte order. */
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + IP_PROTOCOL_OFFSET,
			       &ip_protocol, 1))
		return TC_ACT_UNSPEC;
	if (!ipv4_tcp(skb->protocol, ip_protocol))
		return TC_ACT_UNSPEC;
	count(LOSS_EGRESS_TCP);
	if (!unlucky())
		return TC_ACT_UNSPEC;
	count(LOSS_EGRESS_DROPPED);
	return TC_ACT_SHOT;
}

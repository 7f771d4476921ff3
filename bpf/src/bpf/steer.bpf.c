// SPDX-License-Identifier: Apache-2.0
/*
 * steer.bpf.c - XDP program that steers the appliance's frames to its AF_XDP
 * socket and passes everything else to the kernel stack.
 *
 * Steered (bpf_redirect_map into the xsks slot of ctx->rx_queue_index, with
 * XDP_PASS as the fallback when that slot is empty):
 *   - IPv4/TCP frames whose 4-tuple is in the flows map (exact match), IPv4
 *     options allowed;
 *   - unfragmented IPv4/UDP datagrams whose destination
 *     address:port is in the udp_ports map (event feeds: the appliance's
 *     address, or a multicast group whose membership the kernel holds on
 *     the interface; IGMP and the group's other ports stay the kernel's);
 *   - Ethernet/IPv4 ARP requests and replies whose target protocol address
 *     is the appliance's own address (config map).
 * Everything else is XDP_PASS: other TCP and UDP, IPv6, IPv4 fragments,
 * VLAN-tagged frames (we own none), and malformed or truncated headers
 * (also counted as malformed). This program never drops a frame.
 *
 * Layouts, map sizes and counter indices live in steer.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "steer.h"

/* Not GPL-compatible, so GPL-only helpers (bpf_printk, ...) are unavailable;
 * the program needs none of them. */
char LICENSE[] SEC("license") = "Apache-2.0";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u8);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_UDP_PORTS);
	__type(key, struct udp_key);
	__type(value, __u8);
} udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STEER_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* What the parser decided about a frame. */
enum steer_class {
	CLASS_NOT_OURS,
	CLASS_OWNED,
	CLASS_MALFORMED,
};

/* From linux/if_arp.h, which drags in glibc headers that do not build for
 * the BPF target. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

/* From the kernel's include/net/ip.h (not uapi): IPv4 frag_off bits. */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* The fixed part of an ARP packet (struct arphdr): htype to oper. */
#define ARP_FIXED_LEN 8

/* ARP for Ethernet hardware and IPv4 protocol addresses (RFC 826). Addresses
 * are byte arrays: after the 6-byte sha, spa is not 4-byte aligned. */
struct arp_eth_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
};

static __always_inline void count(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &index);

	/* Per-CPU slot, and XDP does not migrate: no atomic needed. */
	if (n)
		*n += 1;
}

static __always_inline int classify_arp(void *l3, void *data_end)
{
	struct arp_eth_ipv4 *arp = l3;
	struct steer_config *cfg;
	__u32 zero = 0;
	__be32 tpa;

	if (l3 + ARP_FIXED_LEN > data_end)
		return CLASS_MALFORMED;
	if (arp->htype != bpf_htons(ARPHRD_ETHER) ||
	    arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != ETH_ALEN ||
	    arp->plen != 4)
		return CLASS_NOT_OURS;
	if ((void *)(arp + 1) > data_end)
		return CLASS_MALFORMED;
	if (arp->oper != bpf_htons(ARPOP_REQUEST) &&
	    arp->oper != bpf_htons(ARPOP_REPLY))
		return CLASS_NOT_OURS;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->appliance_ip == 0)
		return CLASS_NOT_OURS;
	__builtin_memcpy(&tpa, arp->tpa, sizeof(tpa));
	return tpa == cfg->appliance_ip ? CLASS_OWNED : CLASS_NOT_OURS;
}

/* A UDP datagram whose header starts at l4 and whose IP payload is l4_len
 * bytes: ours when its destination is in udp_ports. */
static __always_inline int classify_udp(struct iphdr *ip, void *l4,
					void *data_end, __u32 l4_len)
{
	struct udphdr *udp = l4;
	struct udp_key key;
	__u32 len;

	if ((void *)(udp + 1) > data_end)
		return CLASS_MALFORMED;
	len = bpf_ntohs(udp->len);
	if (len < sizeof(*udp) || len > l4_len)
		return CLASS_MALFORMED;
	key.local_ip = ip->daddr;
	key.local_port = udp->dest;
	key.zero = 0;
	return bpf_map_lookup_elem(&udp_ports, &key) ? CLASS_OWNED : CLASS_NOT_OURS;
}

/* l3_len: bytes from the start of the IPv4 header to the end of the frame. */
static __always_inline int classify_ipv4(void *l3, void *data_end, __u32 l3_len)
{
	struct iphdr *ip = l3;
	struct flow_key key;
	struct tcphdr *tcp;
	__u32 ihl_len, tot_len, tcp_len;

	if ((void *)(ip + 1) > data_end)
		return CLASS_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return CLASS_MALFORMED;
	ihl_len = ip->ihl * 4; /* 20..60 */
	tot_len = bpf_ntohs(ip->tot_len);
	/* The frame may carry Ethernet padding after tot_len, never less. */
	if (tot_len < ihl_len || tot_len > l3_len)
		return CLASS_MALFORMED;

	/* Only first fragments carry a TCP header, and we reassemble none. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return CLASS_NOT_OURS;
	if (ip->protocol == IPPROTO_UDP)
		return classify_udp(ip, l3 + ihl_len, data_end, tot_len - ihl_len);
	if (ip->protocol != IPPROTO_TCP)
		return CLASS_NOT_OURS;

	/* The TCP header follows the options, not sizeof(struct iphdr). */
	tcp = l3 + ihl_len;
	if ((void *)(tcp + 1) > data_end)
		return CLASS_MALFORMED;
	tcp_len = tcp->doff * 4;
	if (tcp_len < sizeof(*tcp) || tcp_len > tot_len - ihl_len)
		return CLASS_MALFORMED;

	key.remote_ip = ip->saddr;
	key.local_ip = ip->daddr;
	key.remote_port = tcp->source;
	key.local_port = tcp->dest;
	return bpf_map_lookup_elem(&flows, &key) ? CLASS_OWNED : CLASS_NOT_OURS;
}

static __always_inline int classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return CLASS_MALFORMED;

	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return classify_ipv4(eth + 1, data_end,
				     ctx->data_end - ctx->data - sizeof(*eth));
	case bpf_htons(ETH_P_ARP):
		return classify_arp(eth + 1, data_end);
	default:
		/* IPv6, VLAN tags (802.1Q, 802.1ad), 802.3 lengths, ... */
		return CLASS_NOT_OURS;
	}
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	int class = classify(ctx);
	long action;

	count(STEER_SEEN);
	if (class == CLASS_OWNED) {
		action = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
		count(action == XDP_REDIRECT ? STEER_STEERED : STEER_PASSED);
		return action;
	}
	if (class == CLASS_MALFORMED)
		count(STEER_MALFORMED);
	count(STEER_PASSED);
	return XDP_PASS;
}

package sip

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestPeerDialogMatch is the dialog rule as a table: Call-ID and both tags (RFC 3261 §12.2.2),
// then the leg's transport and source (peerDialog's doc comment).
func TestPeerDialogMatch(t *testing.T) {
	t.Parallel()
	tr := &trunk{TrunkConfig: TrunkConfig{Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}}
	udp := newPeerDialog("cid", "ours", "theirs", "udp", "192.0.2.7:5060", nil)
	tcp := newPeerDialog("cid", "ours", "theirs", "tcp", "192.0.2.7:40000", nil)
	tls := newPeerDialog("cid", "ours", "theirs", "tls", "192.0.2.7:40000", nil)
	ws := newPeerDialog("cid", "ours", "theirs", "ws", "192.0.2.7:50000", tr)
	trunkLeg := newPeerDialog("cid", "ours", "theirs", "udp", "198.51.100.1:5060", tr)
	early := peerDialog{callID: "cid", local: "ours"} // callee leg before its 2xx
	for _, tc := range []struct {
		name           string
		d              peerDialog
		callID, to, fr string // To tag (ours) and From tag (theirs) of the request
		tp, src        string
		want           string
	}{
		{"the peer", udp, "cid", "ours", "theirs", "UDP", "192.0.2.7:5060", ""},
		{"another port of the peer's address", udp, "cid", "ours", "theirs", "UDP", "192.0.2.7:5999", ""},
		{"IPv4-mapped address", udp, "cid", "ours", "theirs", "UDP", "[::ffff:192.0.2.7]:5060", ""},
		{"UDP leg, request over TCP (RFC 3261 §18.1.1)", udp, "cid", "ours", "theirs", "TCP", "192.0.2.7:41000", ""},
		{"TCP leg, request over UDP", tcp, "cid", "ours", "theirs", "UDP", "192.0.2.7:5060", mismatchSource},
		{"TLS leg, request over TCP", tls, "cid", "ours", "theirs", "TCP", "192.0.2.7:40000", mismatchSource},
		{"TLS leg, new TLS connection", tls, "cid", "ours", "theirs", "TLS", "192.0.2.7:40001", ""},
		{"another address", udp, "cid", "ours", "theirs", "UDP", "192.0.2.8:5060", mismatchSource},
		{"forged To tag", udp, "cid", "forged", "theirs", "UDP", "192.0.2.7:5060", mismatchTags},
		{"forged From tag", udp, "cid", "ours", "forged", "UDP", "192.0.2.7:5060", mismatchTags},
		{"no tags", udp, "cid", "", "", "UDP", "192.0.2.7:5060", mismatchTags},
		{"tags swapped", udp, "cid", "theirs", "ours", "UDP", "192.0.2.7:5060", mismatchTags},
		{"other Call-ID", udp, "cid2", "ours", "theirs", "UDP", "192.0.2.7:5060", mismatchTags},
		{"trunk leg, another proxy of the trunk", trunkLeg, "cid", "ours", "theirs", "UDP", "198.51.100.9:5060", ""},
		{"trunk leg, outside the trunk", trunkLeg, "cid", "ours", "theirs", "UDP", "203.0.113.1:5060", mismatchSource},
		{"WebSocket leg, its connection", ws, "cid", "ours", "theirs", "WSS", "192.0.2.7:50000", ""},
		{"WebSocket leg, another connection of the same host", ws, "cid", "ours", "theirs", "WS", "192.0.2.7:50001", mismatchSource},
		{"WebSocket leg, UDP from the same address", ws, "cid", "ours", "theirs", "UDP", "192.0.2.7:50000", mismatchSource},
		{"WebSocket leg, never a trunk", ws, "cid", "ours", "theirs", "WS", "198.51.100.9:50000", mismatchSource},
		{"callee before its 2xx", early, "cid", "ours", "", "UDP", "192.0.2.7:5060", mismatchTags},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", Host: "telgw.example"})
			from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "peer.example"}, Params: sip.NewParams()}
			if tc.fr != "" {
				from.Params.Add("tag", tc.fr)
			}
			to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: "telgw.example"}, Params: sip.NewParams()}
			if tc.to != "" {
				to.Params.Add("tag", tc.to)
			}
			req.AppendHeader(&from)
			req.AppendHeader(&to)
			req.AppendHeader(sip.NewHeader("Call-ID", tc.callID))
			req.SetTransport(tc.tp)
			req.SetSource(tc.src)
			if got := tc.d.match(req, true); got != tc.want {
				t.Fatalf("match = %q, want %q", got, tc.want)
			}
			if tc.want == mismatchSource {
				if got := tc.d.match(req, false); got != "" {
					t.Fatalf("without the source check: %q, want a match", got)
				}
			}
		})
	}
}

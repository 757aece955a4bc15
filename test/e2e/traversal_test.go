package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v4"
)

// TestTURNCredentials gets relay credentials with the official npm network-traversal SDK and
// allocates a TURN relay with them (pion client, UDP and TCP) on a real telgw.
func TestTURNCredentials(t *testing.T) {
	requireNodePeers(t)
	tg := StartTelgw(t, Options{})
	out := filepath.Join(t.TempDir(), "relay.json")
	RunNode(t, "traversal.test.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString, "TELGW_RELAY_OUT="+out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		IceServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	s := cfg.IceServers[0]
	var addr string
	for _, u := range s.URLs {
		if strings.HasPrefix(u, "turn:") {
			addr = strings.TrimPrefix(strings.SplitN(u, "?", 2)[0], "turn:")
		}
	}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			var conn net.PacketConn
			if transport == "udp" {
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				conn = pc
			} else {
				tc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer tc.Close()
				conn = turn.NewSTUNConn(tc)
			}
			c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
				Username: s.Username, Password: s.Credential, RTO: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("TURN allocation with SDK-issued credentials: %v", err)
			}
			t.Logf("relayed address %s", relay.LocalAddr())
			_ = relay.Close()
		})
	}
}

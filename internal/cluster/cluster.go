// Package cluster lets several telgw nodes share one PostgreSQL: each node registers itself in
// the store and renews a short lease on a heartbeat (so the others learn within seconds that it
// died), publishes where its WebRTC users' devices are connected (the shared location service),
// and takes named, counted leases ("smpp:carrier1" with 2 slots for the whole cluster) that
// move to a live node when their holder dies.
//
// The package is a domain: it knows nothing of SQL or SIP. internal/store implements Store on
// both dialects (on SQLite there is one node, and everything works the same); internal/app runs
// a Member beside the SIP stack; internal/sip asks it which nodes hold a user's devices.
//
// Times are the nodes' clocks (unix milliseconds in the store): nodes of one cluster must keep
// them in step (NTP) to well under a lease TTL.
package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"time"
)

// Node is one telgw process as the cluster sees it.
type Node struct {
	// ID is unique per process start (a restarted node is a new node).
	ID string `json:"id"`
	// Name is the operator's name for the machine (cluster.nodeName, default the hostname).
	Name string `json:"name"`
	// SIPAddr is host:port other nodes send node-to-node SIP to (cluster.sipAddr).
	SIPAddr string `json:"sipAddr"`
	// HTTPAddr is the node's HTTP listener, for operators.
	HTTPAddr string `json:"httpAddr"`
	// Version is the node's build version.
	Version string `json:"version"`
	// Started is when the process joined; Heartbeat its last renewal; Expires when the cluster
	// gives up on it unless it renews again.
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
	Expires   time.Time `json:"expires"`
	// Draining is set from SIGTERM on: the node takes no new calls or registrations.
	Draining bool `json:"draining"`
	// Calls and Registrations are the node's calls in progress and registered device contacts
	// at its last heartbeat.
	Calls         int `json:"calls"`
	Registrations int `json:"registrations"`
}

// Binding is one registered device contact of a user, held by the node whose WebSocket (or TLS
// connection) carries it.
type Binding struct {
	NodeID   string
	Identity string
	// Key tells a user's bindings on one node apart (instance id or contact URI).
	Key       string
	Contact   string
	UserAgent string
	Expires   time.Time
}

// Lease is one slot of a named, counted lease (Name "smpp:carrier1", Slots 2: at most two
// holders in the whole cluster), held by NodeID until Expires unless renewed.
type Lease struct {
	Name    string    `json:"name"`
	Slot    int       `json:"slot"`
	NodeID  string    `json:"nodeId"`
	Expires time.Time `json:"expires"`
}

// LeaseParams asks for one free slot of lease Name for NodeID until Until.
type LeaseParams struct {
	Name   string
	NodeID string
	// Slots is how many holders Name may have in the whole cluster (slots 0…Slots-1).
	Slots int
	// MaxPerNode, when > 0, refuses a slot to a node that already holds that many of Name's
	// (spread links over the nodes: e.g. ceil(Slots / live nodes)).
	MaxPerNode int
	Now, Until time.Time
}

// Store is what the cluster keeps in the shared database. Every method is safe against
// concurrent nodes: LeaseAcquire never hands one slot to two live holders.
type Store interface {
	// NodeHeartbeat inserts or refreshes n's row with n.Expires.
	NodeHeartbeat(ctx context.Context, n Node) error
	// NodeLeave removes a node that stops: its row, its bindings, and its leases (freed).
	NodeLeave(ctx context.Context, id string) error
	// Nodes are the live nodes at now (Expires after now), oldest first.
	Nodes(ctx context.Context, now time.Time) ([]Node, error)
	// NodesSweep deletes nodes that expired before before with their bindings, and bindings
	// expired at now. (A node that is merely not live keeps its bindings: they count again
	// when it renews, e.g. after a pause shorter than the sweep's grace.)
	NodesSweep(ctx context.Context, now, before time.Time) error
	// BindingsPut replaces node's bindings of identity with bs (none: all removed).
	BindingsPut(ctx context.Context, nodeID, identity string, bs []Binding) error
	// BindingHolders are the live, not draining nodes holding a live binding of identity at now.
	BindingHolders(ctx context.Context, identity string, now time.Time) ([]Node, error)
	// LeaseAcquire takes a free slot (never held, released, or expired at p.Now) and returns
	// it; problem.ErrConflict when every slot is taken or the node holds MaxPerNode of them.
	LeaseAcquire(ctx context.Context, p LeaseParams) (int, error)
	// LeaseRenew extends every lease nodeID still holds at now until until, and returns them.
	LeaseRenew(ctx context.Context, nodeID string, now, until time.Time) ([]Lease, error)
	// LeaseRelease frees nodeID's slot of name (no error when it no longer holds it).
	LeaseRelease(ctx context.Context, name string, slot int, nodeID string) error
	// Leases are the leases held at now.
	Leases(ctx context.Context, now time.Time) ([]Lease, error)
}

// Config configures a node's membership.
type Config struct {
	// NodeName is the operator's name for this node. Default: the hostname.
	NodeName string
	// SIPAddr is host:port the other nodes reach this node's SIP listener at (node-to-node
	// calls to users whose devices are connected here). Default: the SIP listener's bound
	// address; required when that is unspecified (0.0.0.0).
	SIPAddr string
	// Heartbeat is how often the node renews its row and its leases. Default 1s.
	Heartbeat time.Duration
	// LeaseTTL is how long the cluster trusts a node (and its leases) after its last
	// heartbeat: a node killed with -9 is out of the cluster, its users' bindings gone and its
	// leases free, within it. Default 5s; at least 3 heartbeats.
	LeaseTTL time.Duration
}

// DefaultConfig is the default membership: a heartbeat each second, 5 s leases.
func DefaultConfig() Config { return Config{Heartbeat: time.Second, LeaseTTL: 5 * time.Second} }

// Validate reports every problem of c, naming the keys (relative to the cluster section).
func (c Config) Validate() error {
	var errs []error
	if c.Heartbeat < 100*time.Millisecond || c.Heartbeat > time.Minute {
		errs = append(errs, fmt.Errorf("heartbeat: %s: want 100ms…1m", c.Heartbeat))
	}
	if c.LeaseTTL < 3*c.Heartbeat {
		errs = append(errs, fmt.Errorf("leaseTTL: %s: want at least 3 heartbeats (%s)", c.LeaseTTL, 3*c.Heartbeat))
	}
	if c.SIPAddr != "" {
		host, port, err := net.SplitHostPort(c.SIPAddr)
		if err != nil || port == "" || port == "0" {
			errs = append(errs, fmt.Errorf("sipAddr: %q: want host:port", c.SIPAddr))
		} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			errs = append(errs, fmt.Errorf("sipAddr: %q: want an address other nodes can reach, not an unspecified one", c.SIPAddr))
		}
	}
	if len(c.NodeName) > 200 {
		errs = append(errs, errors.New("nodeName: longer than 200 characters"))
	}
	return errors.Join(errs...)
}

// PeerKey derives the node-to-node signing key from an access key: every node of a cluster
// holds the same access keys (the store shares them), outsiders do not. A separate derivation
// keeps a leaked node-to-node MAC from saying anything about the access key.
func PeerKey(accessKey []byte) []byte {
	m := hmac.New(sha256.New, accessKey)
	m.Write([]byte("telgw node-to-node SIP v1"))
	return m.Sum(nil)
}

package config

import (
	"time"

	"github.com/telgw/telgw/internal/cluster"
)

// Cluster configures this node's membership of a cluster: several nodes on one PostgreSQL
// behind a SIP dispatcher (internal/cluster, docs/CLUSTER.md). A node on SQLite is a cluster
// of one and needs none of it.
type Cluster struct {
	// NodeName is the name `telgw nodes` shows. Default: the hostname.
	NodeName string `yaml:"nodeName"`
	// SIPAddr is host:port the other nodes send node-to-node SIP to (calls for users whose
	// devices are connected to this node). Default: sip.addr as bound; set it when sip.addr
	// is 0.0.0.0 or the nodes reach each other on another address.
	SIPAddr string `yaml:"sipAddr"`
	// Heartbeat is how often the node renews its lease in the store. Default 1s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// LeaseTTL is how soon after its last heartbeat a node is taken for dead: its users'
	// devices stop being called through it and its leases (SMPP binds) move. Default 5s, at
	// least 3 heartbeats.
	LeaseTTL time.Duration `yaml:"leaseTTL"`
}

func defaultCluster() Cluster {
	d := cluster.DefaultConfig()
	return Cluster{Heartbeat: d.Heartbeat, LeaseTTL: d.LeaseTTL}
}

// MemberConfig is the cluster.Config of this section.
func (c Cluster) MemberConfig() cluster.Config {
	return cluster.Config{NodeName: c.NodeName, SIPAddr: c.SIPAddr, Heartbeat: c.Heartbeat, LeaseTTL: c.LeaseTTL}
}

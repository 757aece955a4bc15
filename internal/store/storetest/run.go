package storetest

import (
	"testing"

	"github.com/telgw/telgw/internal/store"
)

// Run runs every conformance case against one store dialect: foundation (identities,
// settings, push devices, jobs), numbers, SMS, SIP, the
// console's tokens, call deliveries and the cluster (nodes, bindings, leases). This package's tests call it once for
// SQLite and once for PostgreSQL; open returns a fresh, migrated store each call.
func Run(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Foundation", func(t *testing.T) { Foundation(t, open) })
	t.Run("Numbers", func(t *testing.T) { Numbers(t, open) })
	t.Run("SMS", func(t *testing.T) { SMS(t, open) })
	t.Run("SIP", func(t *testing.T) { SIP(t, open) })
	t.Run("Console", func(t *testing.T) { Console(t, open) })
	t.Run("CallEvents", func(t *testing.T) { CallEvents(t, open) })
	t.Run("Cluster", func(t *testing.T) { Cluster(t, open) })
	t.Run("Recordings", func(t *testing.T) { Recordings(t, open) })
}

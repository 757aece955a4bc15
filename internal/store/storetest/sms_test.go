package storetest

import (
	"testing"

	"github.com/telgw/telgw/internal/store"
)

func TestSMSSQLite(t *testing.T) {
	SMS(t, func(t *testing.T) *store.DB { return OpenSQLite(t) })
}

// TestSMSPostgres runs the suite on a fresh database per case (see NewPostgresDatabase).
func TestSMSPostgres(t *testing.T) {
	SMS(t, func(t *testing.T) *store.DB { return OpenPostgres(t) })
}

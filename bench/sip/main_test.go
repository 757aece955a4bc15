package sip

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the harness when a goroutine of telgw or of the harness outlives it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

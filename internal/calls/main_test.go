package calls

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (RemoveParticipant reports from one).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

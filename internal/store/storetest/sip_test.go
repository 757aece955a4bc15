package storetest

import "testing"

func TestSIP(t *testing.T) { Dialects(t, SIP) }

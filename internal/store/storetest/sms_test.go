package storetest

import "testing"

func TestSMS(t *testing.T) { Dialects(t, SMS) }

package storetest

import "testing"

func TestNumbers(t *testing.T) { Dialects(t, Numbers) }

package storetest

import "testing"

func TestFoundation(t *testing.T) { Dialects(t, Foundation) }

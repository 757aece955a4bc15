//go:build !telgwsip

package kamailio

import "testing"

// startTelgw is the in-process telgw target; built only with -tags telgwsip (see
// telgw_on_test.go). Without the tag telgw can still be measured by address
// (TELGW_BENCH_TELGW).
func startTelgw(*testing.T, Parties) (string, bool) { return "", false }

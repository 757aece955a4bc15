package storetest

import "testing"

// The whole conformance suite runs through Run once per dialect, as every store backend would
// run it. The PostgreSQL half skips when no server answers, and fails instead when CI=true.

func TestSQLite(t *testing.T) { Run(t, OpenSQLite) }

func TestPostgres(t *testing.T) { Run(t, OpenPostgres) }

package buildinfo

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRead(t *testing.T) {
	i := Read("", "")
	if i.Version != "dev" || !strings.HasPrefix(i.GoVersion, "go") || i.Platform == "" {
		t.Fatalf("Read(\"\") = %+v", i)
	}
	if got := Read("v1.2.3", "").Version; got != "v1.2.3" {
		t.Fatalf("version %q", got)
	}
	// go test binaries carry no VCS stamp, so the link-time revision stands.
	if got := Read("v1.2.3", "abc123").Revision; got != "abc123" {
		t.Fatalf("revision %q", got)
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	i := Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"}
	reg.MustRegister(i.Collector())
	want := `
# HELP telgw_build_info Always 1; the labels describe the running telgw build.
# TYPE telgw_build_info gauge
telgw_build_info{goversion="go1.26",revision="abc",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "telgw_build_info"); err != nil {
		t.Fatal(err)
	}
}

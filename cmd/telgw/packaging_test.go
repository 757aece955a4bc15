package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboardMetrics: every metric the Grafana dashboard queries is one telgw
// defines (a renamed metric would leave an empty panel), and the dashboard is valid JSON.
func TestGrafanaDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile("../../packaging/grafana/telgw.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	name := regexp.MustCompile(`"(telgw_[a-z0-9_]+)"`)
	_ = filepath.WalkDir("../../internal", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, _ := os.ReadFile(p)
		for _, m := range name.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	used := regexp.MustCompile(`telgw_[a-z0-9_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range used.FindAllString(tg.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					base = strings.TrimSuffix(base, suf)
				}
				if !defined[base] {
					t.Errorf("panel %q queries %s, which telgw does not define", p.Title, m)
				}
				n++
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d metric references", n)
	}
}

// TestPackagingCommands: the commands the Dockerfile and the systemd unit run exist (their
// --help exits 0).
func TestPackagingCommands(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../packaging/systemd/telgw.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"/usr/local/bin/telgw", "healthcheck"`, `CMD ["serve"]`, "VOLUME /data", "TELGW_DATA_DIR=/data", "CGO_ENABLED=0"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/telgw serve\n") {
		t.Error("unit does not run telgw serve")
	}
	for _, args := range [][]string{{"healthcheck", "--timeout", "4s", "--help"}, {"serve", "--help"}} {
		if code, _, errOut := cli(t, args...); code != 0 {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
}

// Package buildinfo describes the running telgw binary: the version given at link time and
// what the Go toolchain stamped into it (VCS revision and time, Go version). `telgw version`
// prints it and the telgw_build_info gauge exports it.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what is known about the build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Read returns version (set with -ldflags "-X main.version=…"; empty means "dev") with the
// build settings from runtime/debug.ReadBuildInfo; they are missing from `go run` and
// `go test` builds, with -buildvcs=false and outside a VCS checkout (a Docker build context
// without .git), so revision (-X main.revision=…) is used when the toolchain stamped none.
func Read(version, revision string) Info {
	if version == "" {
		version = "dev"
	}
	i := Info{Version: version, Revision: revision, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	// A `go install module@version` build has no VCS stamp but a module version.
	if i.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	return i
}

// Collector is the telgw_build_info gauge, constant 1 with the build as labels, so dashboards
// can show which version every node runs and join it to other series.
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "telgw_build_info",
		Help:        "Always 1; the labels describe the running telgw build.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}

package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirPrivate: the data dir is 0700 and the database files and the connection string
// 0600 from the first start, and every later start closes up a directory and files that were
// loosened in between (here 0755 and 0644, with SQLite's -wal and -shm left by a kill -9).
func TestDataDirPrivate(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			o := Options{DataDir: dir}
			if pg {
				o.DatabaseURL = PostgresURL(t)
			}
			tg := StartTelgw(t, o)
			checkPrivate(t, dir, !pg)
			tg.Kill()

			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if err := os.Chmod(filepath.Join(dir, e.Name()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			StartTelgw(t, o)
			checkPrivate(t, dir, !pg)
		})
	}
}

// checkPrivate checks dir is 0700, each of its files 0600 and its directories 0700.
func checkPrivate(t *testing.T, dir string, sqlite bool) {
	t.Helper()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	want := []string{"connection-string"}
	if sqlite {
		want = append(want, "telgw.db", "telgw.db-wal", "telgw.db-shm")
	}
	for _, name := range want {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile (a temporary file)
		}
		if fi.IsDir() { // recordings (media.recording.dir)
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("directory %s has mode %v, want 0700", e.Name(), fi.Mode().Perm())
			}
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/push"
	"github.com/telgw/telgw/internal/store"
)

// Foundation runs the identity, settings, push-device and job-queue cases.
func Foundation(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Identities", func(t *testing.T) { t.Parallel(); identities(t, open(t)) })
	t.Run("Settings", func(t *testing.T) { t.Parallel(); settings(t, open(t)) })
	t.Run("PushDevices", func(t *testing.T) { t.Parallel(); pushDevices(t, open(t)) })
	t.Run("TokenDigests", func(t *testing.T) { t.Parallel(); tokenDigests(t, open(t)) })
	t.Run("JobsTransactional", func(t *testing.T) { t.Parallel(); jobsTransactional(t, open(t)) })
	t.Run("Migrate twice", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}

func identities(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_123).UTC()
	if err := db.IdentityCreate(ctx, identity.Identity{ID: "8:acs:r_1", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.IdentityCreate(ctx, identity.Identity{ID: "8:acs:r_1", CreatedAt: at}); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("duplicate create: %v", err)
	}
	got, err := db.IdentityGet(ctx, "8:acs:r_1")
	if err != nil || !got.CreatedAt.Equal(at) || got.TokenGeneration != 0 {
		t.Fatalf("get: %+v %v", got, err)
	}
	// Concurrent revocations each move the generation exactly once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.IdentityRevokeTokens(ctx, "8:acs:r_1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := db.IdentityGet(ctx, "8:acs:r_1"); got.TokenGeneration != 10 {
		t.Fatalf("generation %d after 10 revocations", got.TokenGeneration)
	}
	if err := db.IdentityDelete(ctx, "8:acs:r_1"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get deleted":    func() error { _, err := db.IdentityGet(ctx, "8:acs:r_1"); return err }(),
		"delete deleted": db.IdentityDelete(ctx, "8:acs:r_1"),
		"revoke deleted": func() error { _, err := db.IdentityRevokeTokens(ctx, "8:acs:r_1"); return err }(),
	} {
		if !errors.Is(err, problem.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func settings(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if _, err := db.SettingGet(ctx, "k"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("missing setting: %v", err)
	}
	// Many nodes racing to initialise a key: exactly one value wins and all read it.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.SettingPutIfAbsent(ctx, "k", string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v1, err := db.SettingGet(ctx, "k")
	if err != nil || len(v1) != 1 {
		t.Fatalf("after race: %q %v", v1, err)
	}
	if err := db.SettingPutIfAbsent(ctx, "k", "zz"); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.SettingGet(ctx, "k"); v != v1 {
		t.Fatalf("PutIfAbsent overwrote %q with %q", v1, v)
	}
	if err := db.SettingPut(ctx, "k", "new"); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.SettingGet(ctx, "k"); v != "new" {
		t.Fatalf("put: %q", v)
	}
}

func pushDevices(t *testing.T, db *store.DB) {
	ctx := context.Background()
	now := time.Now().UTC()
	for _, id := range []string{"8:acs:a", "8:acs:b"} {
		if err := db.IdentityCreate(ctx, identity.Identity{ID: id, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PushDeviceUpsert(ctx, push.Device{Identity: "8:acs:nobody", Platform: push.FCM, Token: "x", CreatedAt: now}); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("device for unknown identity: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.PushDeviceUpsert(ctx, push.Device{Identity: "8:acs:a", Platform: push.FCM, Token: "t1", CreatedAt: now}))
	must(db.PushDeviceUpsert(ctx, push.Device{Identity: "8:acs:a", Platform: push.APNs, Token: "t1", CreatedAt: now}))
	// The same token moving to another identity (phone changed hands) is re-assigned.
	must(db.PushDeviceUpsert(ctx, push.Device{Identity: "8:acs:b", Platform: push.FCM, Token: "t1", CreatedAt: now}))
	a, _ := db.PushDevicesFor(ctx, "8:acs:a")
	b, _ := db.PushDevicesFor(ctx, "8:acs:b")
	if len(a) != 1 || a[0].Platform != push.APNs || len(b) != 1 || b[0].Token != "t1" {
		t.Fatalf("a=%v b=%v", a, b)
	}
	if err := db.PushDeviceDelete(ctx, "8:acs:a", push.FCM, "t1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("deleting another identity's token: %v", err)
	}
	// Deleting the identity removes its devices.
	must(db.IdentityDelete(ctx, "8:acs:b"))
	if b, _ := db.PushDevicesFor(ctx, "8:acs:b"); len(b) != 0 {
		t.Fatalf("devices of deleted identity: %v", b)
	}
}

type probeArgs struct {
	N int `json:"n"`
}

func (probeArgs) Kind() string { return "telgw.storetest.probe" }

// unknownArgs is a job kind no worker is registered for.
type unknownArgs struct{}

func (unknownArgs) Kind() string { return "telgw.storetest.unknown" }

type probeWorker struct {
	river.WorkerDefaults[probeArgs]
	mu   sync.Mutex
	seen map[int]int
}

func (w *probeWorker) Work(_ context.Context, j *river.Job[probeArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[j.Args.N]++
	return nil
}

// jobsTransactional checks the store's outbox (Tx.InsertJob) with the jobs runner: a job
// inserted in a rolled-back transaction never runs, committed ones run exactly once.
func jobsTransactional(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	workers := jobs.NewWorkers()
	w := &probeWorker{seen: map[int]int{}}
	river.AddWorker(workers, w)
	r, err := jobs.New(db, workers, jobs.Config{FetchPollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The store's client is insert-only: it takes a kind no worker of its own knows (the
	// runner's workers decide). Rolled back, so nothing is left to work.
	errRollback := errors.New("roll back")
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertJob(ctx, unknownArgs{}, nil); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("insert a job of an unregistered kind: %v", err)
	}
	for n := range 20 {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertJob(ctx, probeArgs{N: n}, nil); err != nil {
				return err
			}
			if n%2 == 1 {
				return errors.New("roll back")
			}
			return nil
		})
		if n%2 == 0 && err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.seen)
		w.mu.Unlock()
		if n >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // would a rolled-back job show up late?
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for n := range 20 {
		want := 0
		if n%2 == 0 {
			want = 1
		}
		if w.seen[n] != want {
			t.Errorf("job %d ran %d times, want %d", n, w.seen[n], want)
		}
	}
}

func tokenDigests(t *testing.T, db *store.DB) {
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.IdentityCreate(ctx, identity.Identity{ID: "8:acs:d", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	add := func(tok string, gen int64, exp time.Time) {
		t.Helper()
		if err := db.IdentityDigestAdd(ctx, identity.DigestCredential{Identity: "8:acs:d", TokenID: tok, Generation: gen,
			HA1MD5: "m-" + tok, HA1SHA256: "s-" + tok, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	add("old", 0, now.Add(-time.Minute))
	add("live", 0, now.Add(time.Hour))
	got, err := db.IdentityDigests(ctx, "8:acs:d", now)
	if err != nil || len(got) != 1 || got[0].HA1MD5 != "m-live" || got[0].HA1SHA256 != "s-live" {
		t.Fatalf("digests %+v %v", got, err)
	}
	if _, err := db.IdentityRevokeTokens(ctx, "8:acs:d"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.IdentityDigests(ctx, "8:acs:d", now); len(got) != 0 {
		t.Fatalf("digests of a revoked generation: %+v", got)
	}
	add("new", 1, now.Add(time.Hour))
	if got, _ := db.IdentityDigests(ctx, "8:acs:d", now); len(got) != 1 || got[0].TokenID != "new" {
		t.Fatalf("after re-issue: %+v", got)
	}
	if err := db.IdentityDigestAdd(ctx, identity.DigestCredential{Identity: "8:acs:none", TokenID: "x", ExpiresAt: now}); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("digest for unknown identity: %v", err)
	}
	// A batch is all or nothing.
	batch := []identity.DigestCredential{
		{Identity: "8:acs:d", TokenID: "b1", Generation: 1, HA1MD5: "m", HA1SHA256: "s", ExpiresAt: now.Add(time.Hour)},
		{Identity: "8:acs:d", TokenID: "b2", Generation: 1, HA1MD5: "m", HA1SHA256: "s", ExpiresAt: now.Add(time.Hour)},
	}
	if err := db.IdentityDigestAdd(ctx, append(batch, identity.DigestCredential{Identity: "8:acs:none", TokenID: "y", ExpiresAt: now})...); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("batch with an unknown identity: %v", err)
	}
	if got, _ := db.IdentityDigests(ctx, "8:acs:d", now); len(got) != 1 {
		t.Fatalf("a failed batch left rows: %+v", got)
	}
	if err := db.IdentityDigestAdd(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.IdentityDigests(ctx, "8:acs:d", now); len(got) != 3 {
		t.Fatalf("after a batch of 2: %+v", got)
	}
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// Numbers runs the number-inventory cases: import, holds (including N goroutines holding from
// one small pool: no number held twice), purchase (never sold twice), expiry without a writer,
// release and quarantine, reservations, operations, sweeping and assignment to users.
func Numbers(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Import", func(t *testing.T) { t.Parallel(); numberImport(t, open(t)) })
	t.Run("ConcurrentHolds", func(t *testing.T) { t.Parallel(); numberConcurrentHolds(t, open(t)) })
	t.Run("ConcurrentPurchase", func(t *testing.T) { t.Parallel(); numberConcurrentPurchase(t, open(t)) })
	t.Run("ConcurrentReservations", func(t *testing.T) { t.Parallel(); numberConcurrentReservations(t, open(t)) })
	t.Run("Lifecycle", func(t *testing.T) { t.Parallel(); numberLifecycle(t, open(t)) })
	t.Run("Reservations", func(t *testing.T) { t.Parallel(); numberReservations(t, open(t)) })
	t.Run("Catalog", func(t *testing.T) { t.Parallel(); numberCatalog(t, open(t)) })
	t.Run("Assignment", func(t *testing.T) { t.Parallel(); numberAssignment(t, open(t)) })
}

var t0 = time.UnixMilli(1_900_000_000_000).UTC()

// stock imports count numbers +1NPA200XXXX (XXXX from 0000).
func stock(t *testing.T, db *store.DB, npa string, count int, tweak func(*numbers.ImportInput)) []numbers.E164 {
	t.Helper()
	var ns []numbers.Number
	var out []numbers.E164
	for i := range count {
		in := numbers.ImportInput{PhoneNumber: fmt.Sprintf("+1%s200%04d", npa, i), Carrier: "carrier-a"}
		if tweak != nil {
			tweak(&in)
		}
		n, err := numbers.NewNumber(in, t0)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
		out = append(out, n.E164)
	}
	got, err := db.NumberImport(context.Background(), ns)
	if err != nil || got != count {
		t.Fatalf("import %d: %d, %v", count, got, err)
	}
	return out
}

func search(qty int, area string, now time.Time, ttl time.Duration) (numbers.Search, numbers.Operation) {
	s := numbers.Search{ID: uuid.NewString(), Type: numbers.TypeGeographic, Assignment: numbers.AssignPerson,
		Caps: numbers.Capabilities{Calling: numbers.CapBoth, SMS: numbers.CapOutbound}, AreaCode: area, Quantity: qty,
		Status: numbers.SearchActive, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	return s, op(numbers.OpSearch, s.ID, now)
}

func op(t numbers.OperationType, resource string, now time.Time) numbers.Operation {
	return numbers.Operation{ID: t.Prefix() + uuid.NewString(), Type: t, Status: numbers.OpSucceeded, Resource: resource, CreatedAt: now, UpdatedAt: now}
}

func numberImport(t *testing.T, db *store.DB) {
	ctx := context.Background()
	es := stock(t, db, "425", 10, nil)
	// Re-import is idempotent: nothing new, nothing changed.
	n, _ := numbers.NewNumber(numbers.ImportInput{PhoneNumber: string(es[0]), Carrier: "other", MonthlyCost: "9"}, t0)
	extra, _ := numbers.NewNumber(numbers.ImportInput{PhoneNumber: "+18005551234"}, t0)
	got, err := db.NumberImport(ctx, []numbers.Number{n, n, extra})
	if err != nil || got != 1 {
		t.Fatalf("re-import: %d %v", got, err)
	}
	g, err := db.NumberGet(ctx, es[0])
	if err != nil || g.Carrier != "carrier-a" || g.MonthlyUSD != 1 || g.Type != numbers.TypeGeographic ||
		g.Locality == "" || g.State != "WA" || g.Status != numbers.StateAvailable || !g.Available(t0) || !g.ImportedAt.Equal(t0) {
		t.Fatalf("get: %+v %v", g, err)
	}
	if g, _ := db.NumberGet(ctx, "+18005551234"); g.Type != numbers.TypeTollFree || g.MonthlyUSD != 2 {
		t.Fatalf("toll-free defaults: %+v", g)
	}
	if _, err := db.NumberGet(ctx, "+14252009999"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	page, err := db.NumberList(ctx, numbers.ListParams{AreaCode: "425", Skip: 2, Top: 3, Now: t0})
	if err != nil || len(page) != 3 || page[0].E164 != es[2] {
		t.Fatalf("list: %v %v", page, err)
	}
	all, _ := db.NumberList(ctx, numbers.ListParams{State: numbers.StateAvailable, Top: 100, Now: t0})
	if len(all) != 11 {
		t.Fatalf("available: %d", len(all))
	}
	// Withdraw: unsold goes, unknown is not found, held is a conflict.
	if err := db.NumberWithdraw(ctx, es[9], t0); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberWithdraw(ctx, es[9], t0); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("withdraw twice: %v", err)
	}
	s, o := search(9, "425", t0, time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s, o, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberWithdraw(ctx, es[0], t0); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("withdraw held: %v", err)
	}
	// Once the hold runs out the number is unsold again.
	if err := db.NumberWithdraw(ctx, es[0], t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("withdraw after hold expiry: %v", err)
	}
}

// numberConcurrentHolds: goroutines search the same small pool until it runs dry. Every
// number ends up in at most one search, and none is left over that a search could have had.
func numberConcurrentHolds(t *testing.T, db *store.DB) {
	ctx := context.Background()
	const pool, workers, qty = 300, 16, 3
	stock(t, db, "206", pool, nil)
	var mu sync.Mutex
	owner := map[numbers.E164]string{}
	var dup, searches atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s, o := search(qty, "206", t0, 15*time.Minute)
				got, err := db.NumberSearchCreate(ctx, s, o, t0)
				if errors.Is(err, numbers.ErrOutOfStock) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				searches.Add(1)
				if len(got.Numbers) != qty {
					t.Errorf("search held %d numbers, want %d", len(got.Numbers), qty)
				}
				mu.Lock()
				for _, e := range got.Numbers {
					if _, ok := owner[e]; ok {
						dup.Add(1)
					}
					owner[e] = got.ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if dup.Load() != 0 {
		t.Fatalf("%d numbers held twice", dup.Load())
	}
	if len(owner) != pool || searches.Load() != pool/qty {
		t.Fatalf("held %d numbers in %d searches, want %d in %d", len(owner), searches.Load(), pool, pool/qty)
	}
	// Each search reads back exactly its own numbers.
	for e, id := range owner {
		n, err := db.NumberGet(ctx, e)
		if err != nil || n.HoldID != id || n.Status != numbers.StateHeld {
			t.Fatalf("%s: %+v %v", e, n, err)
		}
	}
	// Out of stock left nothing behind: no search record, no operation.
	s, o := search(1, "206", t0, time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s, o, t0); !errors.Is(err, numbers.ErrOutOfStock) {
		t.Fatalf("empty pool: %v", err)
	}
	if _, err := db.NumberSearchGet(ctx, s.ID); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("failed search was recorded: %v", err)
	}
	if _, err := db.NumberOperationGet(ctx, o.ID); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("failed search's operation was recorded: %v", err)
	}
}

// numberConcurrentPurchase: many purchases of one search and of its numbers through a rival
// reservation; the numbers are sold exactly once.
func numberConcurrentPurchase(t *testing.T, db *store.DB) {
	ctx := context.Background()
	stock(t, db, "212", 5, nil)
	s, o := search(5, "212", t0, time.Minute)
	held, err := db.NumberSearchCreate(ctx, s, o, t0)
	if err != nil {
		t.Fatal(err)
	}
	var ok, conflict atomic.Int64
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.NumberSearchPurchase(ctx, s.ID, op(numbers.OpPurchase, "", t0), t0.Add(time.Second))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, problem.ErrConflict):
				conflict.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 11 {
		t.Fatalf("purchases: %d ok, %d conflicts", ok.Load(), conflict.Load())
	}
	list, err := db.NumberPurchasedList(ctx, 0, 100)
	if err != nil || len(list) != 5 {
		t.Fatalf("purchased: %d %v", len(list), err)
	}
	for _, n := range list {
		if n.Purchased == nil || n.FreeAt != nil || n.Assignment != numbers.AssignPerson || n.Caps.SMS != numbers.CapOutbound {
			t.Fatalf("purchased number: %+v", n)
		}
	}
	// A purchased number cannot be searched, reserved or withdrawn.
	s2, o2 := search(1, "212", t0.Add(time.Hour), time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s2, o2, t0.Add(time.Hour)); !errors.Is(err, numbers.ErrOutOfStock) {
		t.Fatalf("purchased numbers offered again: %v", err)
	}
	_, _, failed, err := db.NumberReservationUpsert(ctx, reserve(uuid.NewString(), t0.Add(time.Hour), held.Numbers[0]))
	if err != nil || failed[held.Numbers[0]] == nil {
		t.Fatalf("reserve purchased: %v %v", failed, err)
	}
	if err := db.NumberWithdraw(ctx, held.Numbers[0], t0.Add(time.Hour)); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("withdraw purchased: %v", err)
	}
}

func reserve(id string, now time.Time, add ...numbers.E164) numbers.ReservationChange {
	ch := numbers.ReservationChange{ID: id, Add: map[numbers.E164]numbers.ReservedWant{}, Now: now, TTL: 15 * time.Minute, MaxAge: 2 * time.Hour}
	for _, e := range add {
		ch.Add[e] = numbers.ReservedWant{Type: e.Type(), Assignment: numbers.AssignApplication,
			Caps: numbers.Capabilities{Calling: numbers.CapInbound, SMS: numbers.CapNone}}
	}
	return ch
}

// numberConcurrentReservations: reservations racing for the same numbers each get a number
// at most once overall.
func numberConcurrentReservations(t *testing.T, db *store.DB) {
	ctx := context.Background()
	es := stock(t, db, "213", 4, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[numbers.E164]int{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, failed, err := db.NumberReservationUpsert(ctx, reserve(uuid.NewString(), t0, es...))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, rn := range r.Numbers {
				got[rn.Number.E164]++
			}
			if len(failed)+len(r.Numbers) != len(es) {
				t.Errorf("reservation reported %d numbers and %d failures", len(r.Numbers), len(failed))
			}
		}()
	}
	wg.Wait()
	for _, e := range es {
		if got[e] != 1 {
			t.Fatalf("%s reserved %d times", e, got[e])
		}
	}
}

func numberLifecycle(t *testing.T, db *store.DB) {
	ctx := context.Background()
	es := stock(t, db, "503", 2, nil)
	// Asking for more than there is holds nothing.
	sp, op0 := search(3, "503", t0, time.Minute)
	if _, err := db.NumberSearchCreate(ctx, sp, op0, t0); !errors.Is(err, numbers.ErrOutOfStock) {
		t.Fatalf("3 of 2: %v", err)
	}
	for _, e := range es {
		if n, _ := db.NumberGet(ctx, e); n.Status != numbers.StateAvailable || n.HoldID != "" {
			t.Fatalf("partial hold left behind: %+v", n)
		}
	}
	// Hold for one minute; after it runs out the same numbers are available with no writer.
	s, o := search(2, "503", t0, time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s, o, t0); err != nil {
		t.Fatal(err)
	}
	s2, o2 := search(1, "503", t0.Add(30*time.Second), time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s2, o2, t0.Add(30*time.Second)); !errors.Is(err, numbers.ErrOutOfStock) {
		t.Fatalf("held numbers offered: %v", err)
	}
	later := t0.Add(2 * time.Minute)
	s3, o3 := search(2, "503", later, time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s3, o3, later); err != nil {
		t.Fatalf("expired hold not freed: %v", err)
	}
	// The first search can no longer buy them; nothing changes.
	if _, err := db.NumberSearchPurchase(ctx, s.ID, op(numbers.OpPurchase, "", later), later); !errors.Is(err, numbers.ErrSearchExpired) {
		t.Fatalf("purchase of expired search: %v", err)
	}
	if n, _ := db.NumberGet(ctx, es[0]); n.HoldID != s3.ID || n.Status != numbers.StateHeld {
		t.Fatalf("after failed purchase: %+v", n)
	}
	bought, err := db.NumberSearchPurchase(ctx, s3.ID, op(numbers.OpPurchase, "", later), later)
	if err != nil || len(bought) != 2 {
		t.Fatalf("purchase: %v %v", bought, err)
	}
	// Capabilities and routes.
	n, err := db.NumberCapabilitiesUpdate(ctx, es[0], numbers.Capabilities{Calling: numbers.CapInbound, SMS: numbers.CapNone}, op(numbers.OpCapabilities, string(es[0]), later))
	if err != nil || n.Caps.Calling != numbers.CapInbound || n.Caps.SMS != numbers.CapNone {
		t.Fatalf("capabilities: %+v %v", n, err)
	}
	r, _ := numbers.SIPRoute("sip:app@pbx.example.com")
	if err := db.NumberSetRoute(ctx, es[0], r); err != nil {
		t.Fatal(err)
	}
	rt, err := db.NumberRouting(ctx, es[0])
	if err != nil || rt.Route.Kind() != numbers.RouteSIP || rt.Route.Target() != "sip:app@pbx.example.com" || rt.Carrier != "carrier-a" || rt.Caps.Calling != numbers.CapInbound {
		t.Fatalf("routing: %+v %v", rt, err)
	}
	// Release: quarantined until `until`, then available again.
	until := later.Add(45 * 24 * time.Hour)
	if err := db.NumberRelease(ctx, es[0], until, op(numbers.OpRelease, "", later)); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberRelease(ctx, es[0], until, op(numbers.OpRelease, "", later)); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("release twice: %v", err)
	}
	if _, err := db.NumberRouting(ctx, es[0]); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("released number still routed: %v", err)
	}
	if err := db.NumberSetRoute(ctx, es[0], r); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("route unsold: %v", err)
	}
	s4, o4 := search(1, "503", until.Add(-time.Hour), time.Minute)
	if _, err := db.NumberSearchCreate(ctx, s4, o4, until.Add(-time.Hour)); !errors.Is(err, numbers.ErrOutOfStock) {
		t.Fatalf("quarantined number offered: %v", err)
	}
	res, err := db.NumberSweep(ctx, until.Add(time.Second))
	if err != nil || res.Unquarantined != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if n, _ := db.NumberGet(ctx, es[0]); n.Status != numbers.StateAvailable || n.Route.Kind() != numbers.RouteDefault {
		t.Fatalf("after quarantine: %+v", n)
	}
	s5, o5 := search(1, "503", until.Add(time.Second), time.Minute)
	if got, err := db.NumberSearchCreate(ctx, s5, o5, until.Add(time.Second)); err != nil || got.Numbers[0] != es[0] {
		t.Fatalf("after quarantine: %v %v", got.Numbers, err)
	}
	// Cancelling frees; the operation record is readable and deletable.
	if err := db.NumberSearchCancel(ctx, s5.ID, until); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.NumberGet(ctx, es[0]); n.Status != numbers.StateAvailable || !n.Available(until) {
		t.Fatalf("after cancel: %+v", n)
	}
	got, err := db.NumberOperationGet(ctx, o5.ID)
	if err != nil || got.Type != numbers.OpSearch || got.Resource != s5.ID || !got.CreatedAt.Equal(o5.CreatedAt) {
		t.Fatalf("operation: %+v %v", got, err)
	}
	if err := db.NumberOperationDelete(ctx, o5.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberOperationDelete(ctx, o5.ID); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

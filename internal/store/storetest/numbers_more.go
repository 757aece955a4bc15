package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

func numberReservations(t *testing.T, db *store.DB) {
	ctx := context.Background()
	es := stock(t, db, "617", 4, func(in *numbers.ImportInput) {
		if in.PhoneNumber == "+16172000003" {
			in.SMS = "none"
		}
	})
	id := uuid.NewString()
	r, created, failed, err := db.NumberReservationUpsert(ctx, reserve(id, t0, es[0], es[1]))
	if err != nil || !created || len(failed) != 0 || len(r.Numbers) != 2 || r.Status != numbers.ReservationActive ||
		!r.ExpiresAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("create: %+v %v %v %v", r, created, failed, err)
	}
	if r.Numbers[0].Status != "reserved" || r.Numbers[0].Number.Caps.Calling != numbers.CapInbound {
		t.Fatalf("reserved number: %+v", r.Numbers[0])
	}
	// A rival cannot take them; a number asking more than offered fails alone (207).
	rival := uuid.NewString()
	ch := reserve(rival, t0, es[0], es[2])
	ch.Add[es[3]] = numbers.ReservedWant{Type: numbers.TypeGeographic, Assignment: numbers.AssignPerson,
		Caps: numbers.Capabilities{Calling: numbers.CapNone, SMS: numbers.CapOutbound}}
	r2, created, failed, err := db.NumberReservationUpsert(ctx, ch)
	if err != nil || !created || len(r2.Numbers) != 1 || r2.Numbers[0].Number.E164 != es[2] ||
		failed[es[0]] == nil || failed[es[3]] == nil || problem.KindOf(failed[es[3]]) != problem.KindInvalid {
		t.Fatalf("rival: %+v %v %v", r2, failed, err)
	}
	// Update: remove one, add one; expiry moves to 15 minutes after the change.
	later := t0.Add(10 * time.Minute)
	ch = reserve(id, later)
	ch.Remove = []numbers.E164{es[1]}
	r, created, failed, err = db.NumberReservationUpsert(ctx, ch)
	if err != nil || created || len(failed) != 0 || len(r.Numbers) != 1 || !r.ExpiresAt.Equal(later.Add(15*time.Minute)) {
		t.Fatalf("update: %+v %v %v %v", r, created, failed, err)
	}
	if n, _ := db.NumberGet(ctx, es[1]); n.Status != numbers.StateAvailable || !n.Available(later) {
		t.Fatalf("removed number: %+v", n)
	}
	if n, _ := db.NumberGet(ctx, es[0]); !n.FreeAt.Equal(later.Add(15 * time.Minute)) {
		t.Fatalf("hold not extended: %+v", n)
	}
	// Lists show both, newest first, without numbers.
	list, err := db.NumberReservationList(ctx, 0, 10, later)
	if err != nil || len(list) != 2 || len(list[0].Numbers) != 0 {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Purchase: all numbers bought, reservation completed; a second purchase conflicts.
	if _, err := db.NumberReservationPurchase(ctx, id, op(numbers.OpReservationPurchase, "", later), later); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NumberReservationPurchase(ctx, id, op(numbers.OpReservationPurchase, "", later), later); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("purchase twice: %v", err)
	}
	r, _ = db.NumberReservationGet(ctx, id, later)
	if r.Status != numbers.ReservationCompleted || len(r.Numbers) != 1 || r.Numbers[0].Status != "purchased" {
		t.Fatalf("completed: %+v", r)
	}
	if _, _, _, err := db.NumberReservationUpsert(ctx, reserve(id, later, es[1])); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("change completed reservation: %v", err)
	}
	// The rival expires 15 minutes after its creation; purchase then fails with nothing bought.
	exp := t0.Add(16 * time.Minute)
	if r, _ := db.NumberReservationGet(ctx, rival, exp); r.Status != numbers.ReservationExpired || r.Numbers[0].Status != "expired" {
		t.Fatalf("expired: %+v", r)
	}
	if _, err := db.NumberReservationPurchase(ctx, rival, op(numbers.OpReservationPurchase, "", exp), exp); !errors.Is(err, numbers.ErrReservationExpired) {
		t.Fatalf("purchase expired: %v", err)
	}
	if _, _, _, err := db.NumberReservationUpsert(ctx, reserve(rival, exp, es[1])); !errors.Is(err, numbers.ErrReservationExpired) {
		t.Fatalf("change expired: %v", err)
	}
	if n, _ := db.NumberGet(ctx, es[2]); n.Status == numbers.StatePurchased || !n.Available(exp) {
		t.Fatalf("expired reservation's number: %+v", n)
	}
	// Two hours at most, however often it changes.
	long := uuid.NewString()
	now := t0
	for range 9 {
		r, _, _, err = db.NumberReservationUpsert(ctx, reserve(long, now))
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(14 * time.Minute)
	}
	if !r.ExpiresAt.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("max age: expires %v", r.ExpiresAt)
	}
	// Delete frees its numbers.
	del := uuid.NewString()
	if _, _, _, err := db.NumberReservationUpsert(ctx, reserve(del, exp, es[2])); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberReservationDelete(ctx, del); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberReservationDelete(ctx, del); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if n, _ := db.NumberGet(ctx, es[2]); n.Status != numbers.StateAvailable {
		t.Fatalf("deleted reservation's number: %+v", n)
	}
	res, err := db.NumberSweep(ctx, exp)
	if err != nil || res.ReservationsExpired != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
}

func numberCatalog(t *testing.T, db *store.DB) {
	ctx := context.Background()
	stock(t, db, "206", 3, nil)
	stock(t, db, "509", 2, func(in *numbers.ImportInput) { in.Locality, in.MonthlyCost = "Spokane", "0.75" })
	stock(t, db, "888", 2, nil)
	codes, err := db.NumberAreaCodes(ctx, numbers.TypeGeographic, "", "WA", t0)
	if err != nil || len(codes) != 2 || codes[0] != "206" || codes[1] != "509" {
		t.Fatalf("area codes: %v %v", codes, err)
	}
	if codes, _ := db.NumberAreaCodes(ctx, numbers.TypeGeographic, "spokane", "", t0); len(codes) != 1 || codes[0] != "509" {
		t.Fatalf("by locality: %v", codes)
	}
	if codes, _ := db.NumberAreaCodes(ctx, numbers.TypeTollFree, "", "", t0); len(codes) != 1 || codes[0] != "888" {
		t.Fatalf("toll-free: %v", codes)
	}
	locs, err := db.NumberLocalities(ctx, numbers.TypeGeographic, "WA", t0)
	if err != nil || len(locs) != 2 {
		t.Fatalf("localities: %v %v", locs, err)
	}
	offs, err := db.NumberOfferings(ctx, t0)
	if err != nil || len(offs) != 2 || offs[0].Type != numbers.TypeGeographic || offs[0].MonthlyUSD != 0.75 || offs[1].MonthlyUSD != 2 {
		t.Fatalf("offerings: %+v %v", offs, err)
	}
	for range 5 {
		got, err := db.NumberBrowse(ctx, numbers.BrowseParams{Type: numbers.TypeGeographic, Prefixes: []string{"1206", "1509"}, Limit: 4, Now: t0,
			Caps: numbers.Capabilities{Calling: numbers.CapNone, SMS: numbers.CapNone}})
		if err != nil || len(got) != 4 {
			t.Fatalf("browse: %d %v", len(got), err)
		}
	}
	got, _ := db.NumberBrowse(ctx, numbers.BrowseParams{Type: numbers.TypeGeographic, Limit: 20, Now: t0,
		Caps: numbers.Capabilities{Calling: numbers.CapNone, SMS: numbers.CapNone}})
	if len(got) != 5 {
		t.Fatalf("browse all: %d", len(got))
	}
}

package sms

import (
	"context"
	"testing"

	"github.com/telgw/telgw/internal/sms/receipt"
)

// TestReceiptPrefersItsOwnKey: a receipt whose id is stored as a part key goes to that part,
// even when a hex/decimal conversion of it names a newer part (hex 1234 is decimal 4660, and
// an SMSC numbering in hex also issues 4660); only a receipt whose own key is unknown is
// matched through a conversion, preferring a part still waiting for its receipt.
func TestReceiptPrefersItsOwnKey(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, _ := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", DeliveryReport: true,
		Recipients: []Recipient{{To: them}, {To: "+14255550101"}, {To: "+14255550102"}}})
	f.sendDue(t)
	// Give the messages' parts the keys of the example: "1234" (older), "4660" (newer), "abc".
	keys := map[string]string{res[0].MessageID: "1234", res[1].MessageID: "4660", res[2].MessageID: "abc"}
	f.store.mu.Lock()
	for k, p := range f.store.parts {
		delete(f.store.parts, k)
		if p.Seq != 1 {
			continue // one part per message is enough here
		}
		p.Key = keys[p.MessageID]
		f.store.parts[[2]string{p.Carrier, p.Key}] = p
	}
	f.store.mu.Unlock()
	stateOf := func(key string) string {
		f.store.mu.Lock()
		defer f.store.mu.Unlock()
		return f.store.parts[[2]string{"c1", key}].State
	}
	apply := func(id string) bool {
		pr := &pendingReceipt{r: Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: id, State: receipt.StateDelivered}}}
		if err := f.store.SMSTx(ctx, func(tx Tx) error { return f.svc.applyReceiptsTx(ctx, tx, []*pendingReceipt{pr}) }); err != nil {
			t.Fatal(err)
		}
		return pr.found
	}
	if !apply("1234") || stateOf("1234") != "delivered" || stateOf("4660") != "" {
		t.Fatalf("receipt 1234: parts 1234=%q 4660=%q, want only 1234 delivered", stateOf("1234"), stateOf("4660"))
	}
	if !apply("0000004660") || stateOf("4660") != "delivered" {
		t.Fatalf("receipt 4660: part 4660=%q", stateOf("4660"))
	}
	if !apply("2748") || stateOf("abc") != "delivered" { // 2748 is 0xabc
		t.Fatalf("decimal receipt of hex abc: part abc=%q", stateOf("abc"))
	}
}

// TestPickPart: with the store's ranks (0 = newest), the receipt's own key wins over a newer
// part under a conversion; among conversions a waiting part wins, then the newest.
func TestPickPart(t *testing.T) {
	t.Parallel()
	k := func(key string) [2]string { return [2]string{"c1", key} }
	parts := map[[2]string]Part{k("1234"): {MessageID: "a"}, k("4660"): {MessageID: "b"}, k("4d2"): {MessageID: "c", State: "delivered"}}
	rank := map[[2]string]int{k("4d2"): 0, k("4660"): 1, k("1234"): 2}
	if got, ok := pickPart("c1", receipt.Candidates("1234"), parts, rank); !ok || got != k("1234") {
		t.Errorf("receipt 1234 → %v, want 1234", got)
	}
	delete(parts, k("1234"))
	// Conversions of "1234": "4d2" is the newest but has its receipt; "4660" still waits.
	if got, ok := pickPart("c1", receipt.Candidates("1234"), parts, rank); !ok || got != k("4660") {
		t.Errorf("receipt 1234 without its part → %v, want 4660 (waiting)", got)
	}
	if _, ok := pickPart("c1", receipt.Candidates("ffff"), parts, rank); ok {
		t.Error("unknown receipt matched")
	}
}

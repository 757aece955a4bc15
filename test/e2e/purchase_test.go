package e2e

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestPurchaseRepeated: buying one search again, one after the other or several at once,
// answers 202 with the first purchase's operation (same Operation-Location, operation-id and
// purchase-id, "purchase_" + searchId as ACS answers) and that operation succeeded; the
// numbers are bought once. On SQLite and on PostgreSQL.
func TestPurchaseRepeated(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			o := Options{DataDir: t.TempDir()}
			if pg {
				o.DatabaseURL = PostgresURL(t)
			}
			tg := StartTelgw(t, o)
			cmd := exec.Command(telgwBin, "numbers", "import", "--range", "+14252000000:+14252000009", "--carrier", "c1")
			cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+o.DataDir, "TELGW_DATABASE_URL="+o.DatabaseURL)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("numbers import: %v\n%s", err, out)
			}
			c := NewClient(t, tg.ConnString)
			search := func() string {
				r := c.Do(t, "POST", "/availablePhoneNumbers/countries/US/:search?api-version=2025-06-01", map[string]any{
					"phoneNumberType": "geographic", "assignmentType": "application", "areaCode": "425", "quantity": 2,
					"capabilities": map[string]string{"calling": "outbound", "sms": "inbound+outbound"}})
				var res struct{ SearchID string }
				r.JSON(t, &res)
				if r.Status != 202 || res.SearchID == "" {
					t.Fatalf("search: %d %s", r.Status, r.Body)
				}
				return res.SearchID
			}
			purchase := func(searchID string) *Response {
				return c.Do(t, "POST", "/availablePhoneNumbers/:purchase?api-version=2025-06-01", map[string]any{"searchId": searchID})
			}
			check := func(r *Response, searchID string) {
				t.Helper()
				if r.Status != 202 || r.Header.Get("operation-id") != "purchase_"+searchID || r.Header.Get("purchase-id") != searchID ||
					!strings.HasPrefix(r.Header.Get("Operation-Location"), "/phoneNumbers/operations/purchase_"+searchID+"?") {
					t.Fatalf("purchase = %d %v %s, want 202 with operation purchase_%s", r.Status, r.Header, r.Body, searchID)
				}
			}

			// Sequential: the repeat answers the first operation.
			id := search()
			check(purchase(id), id)
			check(purchase(id), id)
			op := c.Do(t, "GET", "/phoneNumbers/operations/purchase_"+id+"?api-version=2025-06-01", nil)
			var st struct{ Status, OperationType string }
			op.JSON(t, &st)
			if op.Status != 200 || st.Status != "succeeded" || st.OperationType != "purchase" {
				t.Fatalf("operation: %d %s", op.Status, op.Body)
			}

			// Concurrent: four purchases of one search all answer its one operation.
			id2 := search()
			var wg sync.WaitGroup
			res := make([]*Response, 4)
			for i := range res {
				wg.Go(func() { res[i] = purchase(id2) })
			}
			wg.Wait()
			for _, r := range res {
				check(r, id2)
			}

			var list struct {
				PhoneNumbers []struct{ PhoneNumber string }
			}
			l := c.Do(t, "GET", "/phoneNumbers?api-version=2025-06-01", nil)
			l.JSON(t, &list)
			if l.Status != 200 || len(list.PhoneNumbers) != 4 {
				t.Fatalf("purchased numbers: %d %s, want the 4 the two searches held", l.Status, l.Body)
			}

		})
	}
}

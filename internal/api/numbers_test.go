package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

var testKey = []byte("telgw-api-numbers-test-key-000000")

// numbersServer serves MountNumbers over db, HMAC-authenticated with testKey; users that
// exist are the identities in db.
func numbersServer(t *testing.T, db *store.DB) (*numbers.Service, *httptest.Server) {
	t.Helper()
	svc := numbers.New(numbers.Config{Store: db, UserExists: func(ctx context.Context, id string) (bool, error) {
		_, err := db.IdentityGet(ctx, id)
		if errors.Is(err, problem.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}})
	s := New(Config{Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }, Skew: 15 * time.Minute}})
	s.MountNumbers(svc)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return svc, srv
}

// call sends a signed request (unsigned when sign is false) and decodes a JSON answer into out.
func call(t *testing.T, srv *httptest.Server, method, path, body string, sign bool, out any) int {
	t.Helper()
	u, err := url.Parse(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if sign {
		Sign(testKey, method, req.URL.RequestURI(), req.URL.Host, []byte(body), time.Now(), req.Header)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func TestNumberAssignment(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		t.Parallel()
		ctx := context.Background()
		db := open(t)
		svc, srv := numbersServer(t, db)
		alice := "8:acs:res-1_00000000-0000-4000-8000-00000000000a"
		bob := "8:acs:res-1_00000000-0000-4000-8000-00000000000b"
		ghost := "8:acs:res-1_00000000-0000-4000-8000-0000000000ff"
		for _, id := range []string{alice, bob} {
			if err := db.IdentityCreate(ctx, identity.Identity{ID: id, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.ImportRange(ctx, "+14252000000:+14252000002", numbers.ImportInput{Carrier: "carrier-a"}); err != nil {
			t.Fatal(err)
		}
		qty := 2
		se, op, err := svc.Search(ctx, numbers.SearchRequest{CountryCode: "US", Type: "geographic", Assignment: "application",
			Calling: "inbound+outbound", SMS: "inbound+outbound", AreaCode: "425", Quantity: &qty})
		if err != nil || op.Status != numbers.OpSucceeded {
			t.Fatalf("search: %+v %v", op, err)
		}
		if op, err := svc.Purchase(ctx, se.ID); err != nil || op.Status != numbers.OpSucceeded {
			t.Fatalf("purchase: %+v %v", op, err)
		}
		e0, e1, unsold := string(se.Numbers[0]), string(se.Numbers[1]), "+14252000002"
		if unsold == e0 || unsold == e1 {
			unsold = "+14252000000"
			if unsold == e0 || unsold == e1 {
				unsold = "+14252000001"
			}
		}
		assign := func(e string) string { return "/telgw/numbers/" + url.PathEscape(e) + "/assignment" }
		userNumber := func(id string) string { return "/telgw/users/" + id + "/number" }
		type errBody struct {
			Error ErrorDetail `json:"error"`
		}

		// Assign: 200 with the number, routed to the user, assignmentType person.
		var got inventoryJSON
		if st := call(t, srv, "PUT", assign(e0), `{"communicationUser":"`+alice+`"}`, true, &got); st != http.StatusOK ||
			got.PhoneNumber != e0 || got.Route != "user:"+alice || got.AssignmentType != "person" || got.State != "purchased" {
			t.Fatalf("assign: %d %+v", st, got)
		}
		var num struct {
			PhoneNumber string `json:"phoneNumber"`
		}
		for _, id := range []string{alice, url.PathEscape(alice), strings.ReplaceAll(alice, ":", "%3A")} {
			num.PhoneNumber = ""
			if st := call(t, srv, "GET", userNumber(id), "", true, &num); st != http.StatusOK || num.PhoneNumber != e0 {
				t.Fatalf("user number (%s): %d %+v", id, st, num)
			}
		}
		// Reassign to bob.
		if st := call(t, srv, "PUT", assign(e0), `{"communicationUser":"`+bob+`"}`, true, &got); st != http.StatusOK || got.Route != "user:"+bob {
			t.Fatalf("reassign: %d %+v", st, got)
		}
		var eb errBody
		if st := call(t, srv, "GET", userNumber(alice), "", true, &eb); st != http.StatusNotFound || eb.Error.Code != "PhoneNumberNotFound" ||
			!strings.Contains(eb.Error.Message, "communicationUser") {
			t.Fatalf("previous user: %d %+v", st, eb)
		}

		// Errors: ACS-shaped, naming the field.
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"empty body", "PUT", assign(e1), ``, 400, "InvalidRequestBody", "body"},
			{"no user", "PUT", assign(e1), `{}`, 400, "InvalidCommunicationUser", "communicationUser"},
			{"empty user", "PUT", assign(e1), `{"communicationUser":""}`, 400, "InvalidCommunicationUser", "communicationUser"},
			{"user not a string", "PUT", assign(e1), `{"communicationUser":42}`, 400, "InvalidRequestBody", "communicationUser"},
			{"malformed JSON", "PUT", assign(e1), `{"communicationUser":`, 400, "InvalidRequestBody", "body"},
			{"malformed user", "PUT", assign(e1), `{"communicationUser":"alice"}`, 400, "InvalidCommunicationUser", "communicationUser"},
			{"unknown user", "PUT", assign(e1), `{"communicationUser":"` + ghost + `"}`, 404, "IdentityNotFound", "communicationUser"},
			{"bad number", "PUT", assign("425"), `{"communicationUser":"` + alice + `"}`, 400, "InvalidPhoneNumber", "phoneNumber"},
			{"unknown number", "PUT", assign("+14253339876"), `{"communicationUser":"` + alice + `"}`, 404, "PhoneNumberNotFound", "phoneNumber"},
			{"unsold number", "PUT", assign(unsold), `{"communicationUser":"` + alice + `"}`, 409, "PhoneNumberNotPurchased", "phoneNumber"},
			{"unassign unsold", "DELETE", assign(unsold), ``, 409, "PhoneNumberNotPurchased", "phoneNumber"},
			{"unassign unknown", "DELETE", assign("+14253339876"), ``, 404, "PhoneNumberNotFound", "phoneNumber"},
			{"lookup malformed user", "GET", userNumber("alice"), ``, 400, "InvalidCommunicationUser", "communicationUser"},
			{"lookup unassigned user", "GET", userNumber(ghost), ``, 404, "PhoneNumberNotFound", "communicationUser"},
		} {
			eb = errBody{}
			st := call(t, srv, tc.method, tc.path, tc.body, true, &eb)
			if st != tc.status || eb.Error.Code != tc.code || eb.Error.Target != tc.field || !strings.Contains(eb.Error.Message, tc.field) {
				t.Errorf("%s: %d %+v; want %d %s naming %s", tc.name, st, eb.Error, tc.status, tc.code, tc.field)
			}
		}
		if n, _ := svc.Get(ctx, e1); !n.Route.IsDefault() || n.Assignment != numbers.AssignApplication {
			t.Fatalf("failed assignments changed the number: %+v", n)
		}

		// Unsigned requests are refused.
		if st := call(t, srv, "PUT", assign(e1), `{"communicationUser":"`+alice+`"}`, false, nil); st != http.StatusUnauthorized {
			t.Fatalf("unsigned assign: %d", st)
		}
		if st := call(t, srv, "GET", userNumber(bob), "", false, nil); st != http.StatusUnauthorized {
			t.Fatalf("unsigned lookup: %d", st)
		}

		// Unassign: 204, twice; the user has no number any more.
		for range 2 {
			if st := call(t, srv, "DELETE", assign(e0), "", true, nil); st != http.StatusNoContent {
				t.Fatalf("unassign: %d", st)
			}
		}
		got = inventoryJSON{}
		if st := call(t, srv, "GET", "/telgw/numbers/"+url.PathEscape(e0), "", true, &got); st != http.StatusOK || got.Route != "" ||
			got.AssignmentType != "person" {
			t.Fatalf("after unassign: %d %+v", st, got)
		}
		eb = errBody{}
		if st := call(t, srv, "GET", userNumber(bob), "", true, &eb); st != http.StatusNotFound || eb.Error.Target != "communicationUser" {
			t.Fatalf("after unassign: %d %+v", st, eb)
		}
	})
}

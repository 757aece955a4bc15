package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/testnode"
	"github.com/telgw/telgw/internal/web"
)

// TestPhoneStatusOverHTTP runs a real `telgw serve` without trunks, issues a softphone token
// with `telgw tokens issue --new`, and asks GET /phone/status what stands in the user's way:
// no number and no outbound route; after `telgw numbers assign` only the route is missing.
func TestPhoneStatusOverHTTP(t *testing.T) {
	ctx := context.Background()
	node := testnode.Start(t, testnode.Options{})
	t.Setenv("TELGW_DATA_DIR", node.DataDir)
	t.Setenv("TELGW_DATABASE_URL", "")
	t.Setenv("TELGW_CONFIG", "")
	code, out, errOut := cli(t, "tokens", "issue", "--new", "--json")
	var tok struct{ Identity, Token string }
	if err := json.Unmarshal([]byte(out), &tok); code != 0 || err != nil {
		t.Fatalf("tokens issue: %d %q %q %v", code, out, errOut, err)
	}
	status := func(token string) (int, web.Status) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, node.Endpoint+"phone/status", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st web.Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st
	}
	codes := func(st web.Status) string {
		var cs []string
		for _, p := range st.Problems {
			cs = append(cs, p.Code)
		}
		return strings.Join(cs, ",")
	}
	if c, _ := status(""); c != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", c)
	}
	c, st := status(tok.Token)
	if c != 200 || st.Identity != tok.Identity || st.Number != "" || codes(st) != "NoNumberAssigned,NoOutboundRoute" ||
		!strings.Contains(st.Problems[1].Message, "sip.trunks") {
		t.Fatalf("status: %d %+v", c, st)
	}

	// Buy a number (as an application would over the ACS API) and assign it with the CLI.
	if code, _, errOut := cli(t, "numbers", "import", "--range", "+14252000100:+14252000101"); code != 0 {
		t.Fatal(errOut)
	}
	db, err := store.Open(ctx, store.Options{DataDir: node.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := numbers.New(numbers.Config{Store: db})
	qty := 1
	se, op, err := svc.Search(ctx, numbers.SearchRequest{CountryCode: "US", Type: "geographic", Assignment: "person",
		Calling: "inbound+outbound", SMS: "inbound+outbound", Quantity: &qty})
	if err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("search: %+v %v", op, err)
	}
	if op, err := svc.Purchase(ctx, se.ID); err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("purchase: %+v %v", op, err)
	}
	bought := string(se.Numbers[0])
	if code, _, errOut := cli(t, "numbers", "assign", bought, tok.Identity); code != 0 {
		t.Fatal(errOut)
	}
	c, st = status(tok.Token)
	if c != 200 || st.Number != bought || codes(st) != "NoOutboundRoute" {
		t.Fatalf("after assign: %d %+v", c, st)
	}
}

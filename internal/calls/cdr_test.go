package calls

import (
	"context"
	"testing"
)

// cdrLister records the params it was asked for.
type cdrLister struct{ got []CDRListParams }

func (l *cdrLister) CDRList(_ context.Context, p CDRListParams) ([]CDR, error) {
	l.got = append(l.got, p)
	return []CDR{{CallID: "c1"}}, nil
}

func TestCDRLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if got, err := (CDRLog{}).List(ctx, CDRListParams{}); got != nil || err != nil {
		t.Fatalf("no store: %v, %v", got, err)
	}
	st := &cdrLister{}
	log := CDRLog{Store: st}
	for _, p := range []CDRListParams{{}, {Top: 5, Skip: 2, Number: "+14255550100"}} {
		if got, err := log.List(ctx, p); err != nil || len(got) != 1 {
			t.Fatalf("List(%+v) = %v, %v", p, got, err)
		}
	}
	if st.got[0].Top != 100 || st.got[1] != (CDRListParams{Top: 5, Skip: 2, Number: "+14255550100"}) {
		t.Fatalf("store asked for %+v", st.got)
	}
}

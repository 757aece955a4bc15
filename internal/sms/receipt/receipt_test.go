package receipt

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Receipt
		err  error
	}{
		{
			name: "appendix b",
			in:   "id:0123456789 sub:001 dlvrd:001 submit date:2611280615 done date:2611280616 stat:DELIVRD err:000 Text:Hello world",
			want: Receipt{ID: "0123456789", Submitted: 1, Delivered: 1, SubmitDate: time.Date(2026, 11, 28, 6, 15, 0, 0, time.UTC),
				DoneDate: time.Date(2026, 11, 28, 6, 16, 0, 0, time.UTC), State: StateDelivered, Err: "000", Text: "Hello world"},
		},
		{
			name: "lower case keys, seconds, odd order",
			in:   "stat:UNDELIV err:034 id:AbC123 submit date:261128061530 done date:bad sub:1 dlvrd:0",
			want: Receipt{ID: "AbC123", Submitted: 1, Delivered: 0, SubmitDate: time.Date(2026, 11, 28, 6, 15, 30, 0, time.UTC),
				State: StateUndeliverable, Err: "034"},
		},
		{
			name: "text containing keys",
			in:   "id:7 stat:DELIVRD text:stat:REJECTD id:9",
			want: Receipt{ID: "7", Submitted: -1, Delivered: -1, State: StateDelivered, Text: "stat:REJECTD id:9"},
		},
		{
			name: "unknown state word",
			in:   "id:7 stat:WHATEVER",
			want: Receipt{ID: "7", Submitted: -1, Delivered: -1, State: StateUnknown},
		},
		{name: "no id", in: "sub:1 stat:DELIVRD", err: ErrNoID},
		{name: "no stat", in: "id:1 sub:1", err: ErrNoState},
		{name: "not a receipt", in: "STOP", err: ErrNoID},
		{name: "empty id", in: "id: stat:DELIVRD", err: ErrNoID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && got != tt.want {
				t.Fatalf("Parse = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
}

func TestFromDeliverSM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		tlv   TLVs
		id    string
		state State
		errc  string
		err   error
	}{
		{"tlv only", "", TLVs{ReceiptedMessageID: "ABC\x00", MessageState: StateDelivered}, "ABC", StateDelivered, "", nil},
		{"tlv wins", "id:1 stat:DELIVRD err:000", TLVs{ReceiptedMessageID: "2", MessageState: StateRejected, NetworkErrorCode: []byte{3, 0, 11}}, "2", StateRejected, "11", nil},
		{"text only", "id:5 stat:EXPIRED err:001", TLVs{}, "5", StateExpired, "001", nil},
		{"id tlv state text", "stat:DELIVRD", TLVs{ReceiptedMessageID: "9"}, "9", StateDelivered, "", nil},
		{"nothing", "hello", TLVs{}, "", StateUnset, "", ErrNoID},
		{"id but no state", "", TLVs{ReceiptedMessageID: "9"}, "9", StateUnset, "", ErrNoState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := FromDeliverSM(tt.text, tt.tlv)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && (r.ID != tt.id || r.State != tt.state || r.Err != tt.errc) {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		submitted, receipted string
		match                bool
	}{
		{"ABCDEF", "abcdef", true},
		{"000123", "123", true},
		{"1a", "26", true},         // hex at submit, decimal in receipt
		{"26", "1A", true},         // decimal at submit, hex in receipt
		{"0000001A", "0026", true}, // both with zeros
		{"ff", "256", false},
		{"12345678901234567890ab", "12345678901234567890AB", true},
		{"0", "000", true},
		{"abc", "abd", false},
	}
	for _, tt := range tests {
		got := slices.Contains(Candidates(tt.receipted), Key(tt.submitted))
		if got != tt.match {
			t.Errorf("match(%q, %q) = %v, want %v (candidates %v)", tt.submitted, tt.receipted, got, tt.match, Candidates(tt.receipted))
		}
	}
	if c := Candidates(""); c != nil {
		t.Errorf("Candidates(\"\") = %v", c)
	}
}

func TestStates(t *testing.T) {
	t.Parallel()
	for s := StateUnset; s <= StateRejected; s++ {
		if st, ok := stateNames[s.String()]; s != StateUnset && (!ok || st != s) {
			t.Errorf("state %d name %q does not parse back", s, s.String())
		}
	}
	if !StateDelivered.Final() || StateEnroute.Final() || StateAccepted.Final() || !StateDelivered.Delivered() {
		t.Error("Final/Delivered wrong")
	}
}

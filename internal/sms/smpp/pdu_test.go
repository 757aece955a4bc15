package smpp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func TestReadPDU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hex  string
		err  error
		id   uint32
	}{
		{"enquire_link", "00000010000000150000000000000001", nil, cmdEnquireLink},
		{"too short length", "0000000f000000150000000000000001", errFrame, 0},
		{"too long length", "7fffffff000000150000000000000001", errFrame, 0},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		h, _, err := readPDU(bytes.NewReader(b))
		if !errors.Is(err, tt.err) || (err == nil && h.id != tt.id) {
			t.Errorf("%s: %+v %v", tt.name, h, err)
		}
	}
}

func TestDecodeDeliverSM(t *testing.T) {
	t.Parallel()
	// service_type "", 1/1 "14255550199", 1/1 "14255550100", esm 0x04, pid, prio, "", "", reg,
	// replace, dc 0, default id, sm_length 12 "id:7 stat:DE", then message_state TLV.
	body, _ := hex.DecodeString("00" + "0101" + hex.EncodeToString([]byte("14255550199")) + "00" +
		"0101" + hex.EncodeToString([]byte("14255550100")) + "00" + "04" + "00" + "00" + "00" + "00" + "00" + "00" + "00" + "00" +
		"0c" + hex.EncodeToString([]byte("id:7 stat:DE")) + "0427000102" + "001e000437610000")
	d, err := decodeDeliverSM(body)
	if err != nil {
		t.Fatal(err)
	}
	if !d.isReceipt() || d.src != "14255550199" || d.dstTON != 1 {
		t.Fatalf("decoded %+v", d)
	}
	r, err := d.receipt()
	if err != nil || r.ID != "7a" || r.State != 2 {
		t.Fatalf("receipt %+v %v", r, err)
	}
	if _, err := decodeDeliverSM(body[:len(body)-3]); err == nil {
		t.Fatal("truncated TLV accepted")
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ton  byte
		in   string
		want string
	}{
		{1, "14255550100", "+14255550100"}, {1, "+447700900000", "+447700900000"}, {0, "14255550100", "+14255550100"},
		{0, "4255550100", "4255550100"}, {0, "12345", "12345"}, {5, "ACME", "ACME"}, {1, "ACME", "ACME"},
	}
	for _, tt := range tests {
		if got := e164(tt.ton, tt.in); got != tt.want {
			t.Errorf("e164(%d, %q) = %q, want %q", tt.ton, tt.in, got, tt.want)
		}
	}
	if ton, npi, a := smppAddr("+14255550100"); ton != 1 || npi != 1 || a != "14255550100" {
		t.Errorf("smppAddr = %d %d %q", ton, npi, a)
	}
	if ton, _, _ := smppAddr("ACME"); ton != 5 {
		t.Errorf("alphanumeric TON %d", ton)
	}
}

func TestRelativeValidity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, ""}, {90 * time.Minute, "000000013000000R"}, {49 * time.Hour, "000002010000000R"}, {1000 * 24 * time.Hour, "000099000000000R"},
	}
	for _, tt := range tests {
		if got := relativeValidity(tt.d); got != tt.want {
			t.Errorf("relativeValidity(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// FuzzDecodeDeliverSM checks the deliver_sm decoder and what telgw derives from it never
// panic on SMSC input.
func FuzzDecodeDeliverSM(f *testing.F) {
	f.Add([]byte{0, 1, 1, '1', 0, 1, 1, '2', 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 0, 3})
	f.Add([]byte{0, 1, 1, '1', 0, 1, 1, '2', 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x27, 0, 1, 2})
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := decodeDeliverSM(body)
		if err != nil {
			return
		}
		if d.isReceipt() {
			_, _ = d.receipt()
		} else {
			_, _ = d.part()
		}
	})
}

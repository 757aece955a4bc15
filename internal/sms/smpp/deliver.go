package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/telgw/telgw/internal/sms/gsm"
	"github.com/telgw/telgw/internal/sms/receipt"
)

// deliverSM is a decoded deliver_sm body, SMPP 3.4 §4.6.1.
type deliverSM struct {
	serviceType        string
	srcTON, srcNPI     byte
	src                string
	dstTON, dstNPI     byte
	dst                string
	esmClass           byte
	registeredDelivery byte
	dataCoding         byte
	sm                 []byte
	tlvs               map[uint16][]byte
}

// errBody means a PDU body does not match its command's layout.
var errBody = errors.New("smpp: malformed PDU body")

type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errBody
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// cstring reads a C-octet string of at most max octets before the NUL (SMPP 3.4 §3.1).
func (r *reader) cstring(maxLen int) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b, 0)
	if i < 0 || i > maxLen {
		r.err = errBody
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *reader) n(k int) []byte {
	if r.err != nil || len(r.b) < k {
		r.err = errBody
		return nil
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}

// decodeDeliverSM parses a deliver_sm body. telgw decodes this PDU itself, more leniently
// than gosmpp: a malformed user data header must not make the whole PDU unreadable.
func decodeDeliverSM(body []byte) (deliverSM, error) {
	r := &reader{b: body}
	var d deliverSM
	d.serviceType = r.cstring(5)
	d.srcTON, d.srcNPI = r.byte(), r.byte()
	d.src = r.cstring(20)
	d.dstTON, d.dstNPI = r.byte(), r.byte()
	d.dst = r.cstring(20)
	d.esmClass = r.byte()
	_ = r.byte() // protocol_id
	_ = r.byte() // priority_flag
	_ = r.cstring(16)
	_ = r.cstring(16)
	d.registeredDelivery = r.byte()
	_ = r.byte() // replace_if_present_flag
	d.dataCoding = r.byte()
	_ = r.byte() // sm_default_msg_id
	l := int(r.byte())
	d.sm = r.n(l)
	for r.err == nil && len(r.b) > 0 {
		hdr := r.n(4)
		if r.err != nil {
			break
		}
		tag, tl := binary.BigEndian.Uint16(hdr), int(binary.BigEndian.Uint16(hdr[2:]))
		v := r.n(tl)
		if d.tlvs == nil {
			d.tlvs = map[uint16][]byte{}
		}
		d.tlvs[tag] = v
	}
	if r.err != nil {
		return deliverSM{}, r.err
	}
	return d, nil
}

// isReceipt reports whether the deliver_sm carries a delivery receipt rather than a mobile
// originated message: esm_class message type SMSC delivery receipt (xx0001xx) or
// intermediate delivery notification (xx1000xx), SMPP 3.4 §5.2.12, or a
// receipted_message_id TLV.
func (d deliverSM) isReceipt() bool {
	mt := d.esmClass & 0x3C
	_, has := d.tlvs[tagReceiptedMessageID]
	return mt == 0x04 || mt == 0x20 || has
}

// userData is the short message, or message_payload when short_message is empty (SMPP 3.4
// §5.3.2.32: the two are mutually exclusive).
func (d deliverSM) userData() []byte {
	if len(d.sm) == 0 {
		if p, ok := d.tlvs[tagMessagePayload]; ok {
			return p
		}
	}
	return d.sm
}

// receipt extracts the receipt from text and TLVs.
func (d deliverSM) receipt() (receipt.Receipt, error) {
	t := receipt.TLVs{NetworkErrorCode: d.tlvs[tagNetworkErrorCode]}
	if v, ok := d.tlvs[tagReceiptedMessageID]; ok {
		t.ReceiptedMessageID = strings.TrimRight(string(v), "\x00")
	}
	if v, ok := d.tlvs[tagMessageState]; ok && len(v) == 1 {
		t.MessageState = receipt.State(v[0])
	}
	return receipt.FromDeliverSM(gsm.Decode(gsm.Coding(d.dataCoding), d.userData()), t)
}

// part extracts a mobile originated part: the user data header when esm_class has UDHI
// (TS 23.040 §9.2.3.24), else the SAR TLVs (SMPP 3.4 §5.3.2.22–24). A header that does not
// parse is kept as text rather than losing the message.
func (d deliverSM) part() (gsm.Part, bool) {
	p := gsm.Part{From: e164(d.srcTON, d.src), To: e164(d.dstTON, d.dst), Coding: gsm.Coding(d.dataCoding), Data: d.userData()}
	udhOK := true
	if d.esmClass&0x40 != 0 {
		info, found, payload, err := gsm.SplitUDH(p.Data)
		if err != nil {
			udhOK = false
		} else {
			p.Data = payload
			if found {
				p.Concat = info
			}
		}
		return p, udhOK
	}
	ref, ok1 := d.tlvs[tagSarMsgRefNum]
	tot, ok2 := d.tlvs[tagSarTotalSegments]
	seq, ok3 := d.tlvs[tagSarSegmentSeqnum]
	if ok1 && ok2 && ok3 && len(ref) == 2 && len(tot) == 1 && len(seq) == 1 && seq[0] >= 1 && seq[0] <= tot[0] {
		p.Concat = gsm.ConcatInfo{Ref: binary.BigEndian.Uint16(ref), Ref16: true, Total: tot[0], Seq: seq[0]}
	}
	return p, true
}

// e164 renders an SMPP address as E.164 when its TON says international (SMPP 3.4 §5.2.5),
// or when it is a bare 11-digit NANP number; other addresses (short codes, alphanumerics)
// pass through.
func e164(ton byte, addr string) string {
	a := strings.TrimPrefix(addr, "+")
	digits := a != "" && strings.Trim(a, "0123456789") == ""
	switch {
	case ton == 1 && digits:
		return "+" + a
	case digits && len(a) == 11 && a[0] == '1':
		return "+" + a
	}
	return addr
}

// smppAddr renders an E.164 number for an SMPP address field: digits without "+", with TON 1
// (international) and NPI 1 (ISDN/E.164), SMPP 3.4 §5.2.5–6. Anything else goes as given
// with TON/NPI unknown (0/0) for digits, alphanumeric (5/0) otherwise.
func smppAddr(s string) (ton, npi byte, addr string) {
	if strings.HasPrefix(s, "+") {
		return 1, 1, s[1:]
	}
	if strings.Trim(s, "0123456789") == "" {
		return 0, 0, s
	}
	return 5, 0, s
}

package smpp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// Command ids, SMPP 3.4 §5.1.2.1.
const (
	cmdGenericNack         uint32 = 0x80000000
	cmdBindTransceiver     uint32 = 0x00000009
	cmdBindTransceiverResp uint32 = 0x80000009
	cmdBindTransmitterResp uint32 = 0x80000002
	cmdBindReceiverResp    uint32 = 0x80000001
	cmdSubmitSM            uint32 = 0x00000004
	cmdSubmitSMResp        uint32 = 0x80000004
	cmdDeliverSM           uint32 = 0x00000005
	cmdDeliverSMResp       uint32 = 0x80000005
	cmdUnbind              uint32 = 0x00000006
	cmdUnbindResp          uint32 = 0x80000006
	cmdEnquireLink         uint32 = 0x00000015
	cmdEnquireLinkResp     uint32 = 0x80000015
	cmdDataSM              uint32 = 0x00000103
	cmdAlertNotification   uint32 = 0x00000102
)

// Command statuses telgw sends or classifies, SMPP 3.4 §5.1.3.
const (
	statusOK         uint32 = 0x00000000
	statusInvMsgLen  uint32 = 0x00000001
	statusInvCmdLen  uint32 = 0x00000002
	statusInvCmdID   uint32 = 0x00000003
	statusSysErr     uint32 = 0x00000008
	statusMsgQFul    uint32 = 0x00000014
	statusThrottled  uint32 = 0x00000058
	statusRxTAppn    uint32 = 0x00000064
	statusNoBind     uint32 = 0xFFFF0001 // telgw-internal: no link bound
	statusTimeout    uint32 = 0xFFFF0002 // telgw-internal: no response in time
	statusConnClosed uint32 = 0xFFFF0003 // telgw-internal: link closed with the PDU in flight
)

// maxPDU caps command_length: a 64 KB message_payload plus the largest header and fields.
const maxPDU = 70000

// TLV tags, SMPP 3.4 §5.3.2.
const (
	tagReceiptedMessageID = 0x001E
	tagSarMsgRefNum       = 0x020C
	tagSarTotalSegments   = 0x020E
	tagSarSegmentSeqnum   = 0x020F
	tagNetworkErrorCode   = 0x0423
	tagMessagePayload     = 0x0424
	tagMessageState       = 0x0427
)

// Temporary classifies a submit_sm_resp command_status: throttling (ESME_RTHROTTLED), a full
// queue (ESME_RMSGQFUL), the receiver's temporary application error (ESME_RX_T_APPN) and
// telgw's own no-bind, timeout and closed-link conditions may clear up; every other error
// status is permanent (SMPP 3.4 §5.1.3 gives no other status a transient meaning).
func Temporary(status uint32) bool {
	switch status {
	case statusThrottled, statusMsgQFul, statusRxTAppn, statusNoBind, statusTimeout, statusConnClosed:
		return true
	}
	return false
}

// StatusName returns the ESME_R… name of a command_status, or its hex value.
func StatusName(status uint32) string {
	switch status {
	case statusNoBind:
		return "no bound link"
	case statusTimeout:
		return "response timeout"
	case statusConnClosed:
		return "link closed"
	}
	if s, ok := statusNames[status]; ok {
		return s
	}
	return fmt.Sprintf("command_status %#08x", status)
}

var statusNames = map[uint32]string{
	0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID",
	0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND", 0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR",
	0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID", 0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD",
	0x0F: "ESME_RINVSYSID", 0x14: "ESME_RMSGQFUL", 0x15: "ESME_RINVSERTYP", 0x45: "ESME_RSUBMITFAIL",
	0x48: "ESME_RINVSRCTON", 0x49: "ESME_RINVSRCNPI", 0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI",
	0x58: "ESME_RTHROTTLED", 0x62: "ESME_RINVEXPIRY", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN",
	0x66: "ESME_RX_R_APPN", 0xFF: "ESME_RUNKNOWNERR",
}

// header is the 16-octet PDU header, SMPP 3.4 §3.2.
type header struct {
	length, id, status, seq uint32
}

// errFrame means the byte stream cannot be resynchronised (bad command_length).
var errFrame = errors.New("smpp: invalid command_length")

// readPDU reads one PDU. A command_length outside 16..maxPDU returns errFrame with the header
// read so far, since the stream position after it is unknown.
func readPDU(r io.Reader) (header, []byte, error) {
	var h [16]byte
	if _, err := io.ReadFull(r, h[:4]); err != nil {
		return header{}, nil, err
	}
	hd := header{length: binary.BigEndian.Uint32(h[:4])}
	if hd.length < 16 || hd.length > maxPDU {
		return hd, nil, errFrame
	}
	if _, err := io.ReadFull(r, h[4:]); err != nil {
		return header{}, nil, err
	}
	hd.id = binary.BigEndian.Uint32(h[4:])
	hd.status = binary.BigEndian.Uint32(h[8:])
	hd.seq = binary.BigEndian.Uint32(h[12:])
	body := make([]byte, hd.length-16)
	if _, err := io.ReadFull(r, body); err != nil {
		return header{}, nil, err
	}
	return hd, body, nil
}

// encodeHeaderOnly builds a PDU with an empty body (enquire_link, unbind, their responses,
// generic_nack).
func encodeHeaderOnly(id, status, seq uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b[0:], 16)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

// encodeDeliverSMResp builds deliver_sm_resp (SMPP 3.4 §4.6.2): message_id is unused and NUL.
func encodeDeliverSMResp(status, seq uint32) []byte {
	b := make([]byte, 17)
	binary.BigEndian.PutUint32(b[0:], 17)
	binary.BigEndian.PutUint32(b[4:], cmdDeliverSMResp)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

// marshal encodes a gosmpp PDU under telgw's sequence number (gosmpp's own numbering is
// process-global and not per session).
func marshal(p pdu.PDU, seq uint32) []byte {
	p.SetSequenceNumber(int32(seq))
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	return buf.Bytes()
}

// bindKind is the kind of bind a link holds.
type bindKind int

const (
	bindTRX bindKind = iota // bind_transceiver, SMPP 3.4 §4.1.5
	bindTX                  // bind_transmitter, §4.1.1: submits only
	bindRX                  // bind_receiver, §4.1.3: deliver_sm only
)

// respID is the command_id of the bind's response.
func (k bindKind) respID() uint32 {
	switch k {
	case bindTX:
		return cmdBindTransmitterResp
	case bindRX:
		return cmdBindReceiverResp
	}
	return cmdBindTransceiverResp
}

func (k bindKind) String() string {
	switch k {
	case bindTX:
		return "transmitter"
	case bindRX:
		return "receiver"
	}
	return "transceiver"
}

// encodeBind builds the bind PDU of kind k with interface_version 0x34.
func encodeBind(k bindKind, systemID, password, systemType string, seq uint32) []byte {
	var p pdu.PDU
	switch k {
	case bindTX:
		p = pdu.NewBindTransmitter()
	case bindRX:
		p = pdu.NewBindReceiver()
	default:
		p = pdu.NewBindTransceiver()
	}
	b := p.(*pdu.BindRequest)
	b.SystemID, b.Password, b.SystemType = systemID, password, systemType
	b.InterfaceVersion = data.SMPP_V34
	return marshal(b, seq)
}

// submitPart is one submit_sm to send.
type submitPart struct {
	serviceType        string
	srcTON, srcNPI     byte
	src                string
	dstTON, dstNPI     byte
	dst                string
	esmClass           byte
	registeredDelivery byte
	validity           string
	dataCoding         byte
	udh                []byte // prepended to short_message, esm_class UDHI set
	ud                 []byte // user data without header
	payload            bool   // send ud in message_payload instead
	sar                *sar
}

type sar struct {
	ref          uint16
	total, seqNo byte
}

// encodeSubmitSM builds submit_sm, SMPP 3.4 §4.4.1. The short message is written by telgw
// rather than gosmpp's ShortMessage helpers, whose splitting reuses one sequence number
// for every part and counts runes instead of UCS-2 octets.
func encodeSubmitSM(p submitPart, seq uint32) ([]byte, error) {
	s := pdu.NewSubmitSM().(*pdu.SubmitSM)
	s.ServiceType = p.serviceType
	var err error
	if s.SourceAddr, err = pdu.NewAddressWithTonNpiAddr(p.srcTON, p.srcNPI, p.src); err != nil {
		return nil, fmt.Errorf("source_addr %q: %w", p.src, err)
	}
	if s.DestAddr, err = pdu.NewAddressWithTonNpiAddr(p.dstTON, p.dstNPI, p.dst); err != nil {
		return nil, fmt.Errorf("destination_addr %q: %w", p.dst, err)
	}
	s.EsmClass = p.esmClass
	s.RegisteredDelivery = p.registeredDelivery
	s.ValidityPeriod = p.validity
	sm := p.ud
	if p.payload {
		s.RegisterOptionalParam(pdu.Field{Tag: tagMessagePayload, Data: p.ud})
		sm = nil
	} else if p.udh != nil {
		s.EsmClass |= 0x40 // SMPP 3.4 §5.2.12: UDHI indicator
		sm = append(append([]byte{}, p.udh...), p.ud...)
	}
	if len(sm) > 254 {
		return nil, fmt.Errorf("short_message of %d octets exceeds 254", len(sm))
	}
	if p.sar != nil {
		s.RegisterOptionalParam(pdu.Field{Tag: tagSarMsgRefNum, Data: []byte{byte(p.sar.ref >> 8), byte(p.sar.ref)}})
		s.RegisterOptionalParam(pdu.Field{Tag: tagSarTotalSegments, Data: []byte{p.sar.total}})
		s.RegisterOptionalParam(pdu.Field{Tag: tagSarSegmentSeqnum, Data: []byte{p.sar.seqNo}})
	}
	if err := s.Message.SetMessageDataWithEncoding(sm, rawCoding(p.dataCoding)); err != nil {
		return nil, err
	}
	return marshal(s, seq), nil
}

// rawCoding is a data.Encoding that only carries a data_coding value: telgw encodes text
// itself (internal/sms/gsm) and hands gosmpp finished octets.
type rawCoding byte

func (c rawCoding) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (c rawCoding) Decode(b []byte) (string, error) { return string(b), nil }
func (c rawCoding) DataCoding() byte                { return byte(c) }

// relativeValidity renders d as an SMPP relative time "YYMMDDhhmmss000R", SMPP 3.4 §7.1.1.2.
func relativeValidity(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	s := int64(d / time.Second)
	days := s / 86400
	if days > 99 {
		days, s = 99, 99*86400
	}
	s -= days * 86400
	// "0000DDhhmmss000R" without fmt: this runs for every part submitted.
	b := [16]byte{'0', '0', '0', '0', 0, 0, 0, 0, 0, 0, 0, 0, '0', '0', '0', 'R'}
	for i, v := range [4]int64{days, s / 3600, (s % 3600) / 60, s % 60} {
		b[4+2*i], b[5+2*i] = byte('0'+v/10), byte('0'+v%10)
	}
	return string(b[:])
}

// parseSubmitSMResp reads the message_id of submit_sm_resp (SMPP 3.4 §4.4.2); error
// responses may omit the body entirely.
func parseSubmitSMResp(body []byte) string {
	for i, c := range body {
		if c == 0 {
			return string(body[:i])
		}
	}
	return string(body)
}

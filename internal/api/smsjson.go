package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// The POST /sms body is decoded and its answer encoded here without reflection: at one
// recipient per request encoding/json was the largest part of the handler's CPU. The fast
// decoder takes only the plain shape clients send (the npm SmsClient's: known keys spelt
// exactly, each once; strings without \u escapes; integers); anything else, valid or not, goes
// to encoding/json, so that the result and every error stay exactly encoding/json's. The
// encoder writes the bytes json.Encoder writes (FuzzSMSJSON checks both against it).

// decodeSendRequest decodes a POST /sms body into req (DecodeJSON's behaviour).
func decodeSendRequest(b []byte, req *smsSendRequest) error {
	if fastSendRequest(b, req) {
		return nil
	}
	*req = smsSendRequest{}
	return decodeJSON(b, req, false)
}

// jsonScan reads JSON from b at i.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c (after whitespace) if it comes next.
func (s *jsonScan) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string; false for what the fast path leaves to encoding/json: \u escapes,
// invalid UTF-8 (which encoding/json replaces), control characters (an error).
func (s *jsonScan) str() (string, bool) {
	if !s.next('"') {
		return "", false
	}
	start, ascii := s.i, true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			s.i = j + 1
			return string(raw), true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escaped reads the rest of a string, from start, that holds escapes.
func (s *jsonScan) escaped(start int) (string, bool) {
	out := make([]byte, 0, 64)
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			s.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			continue
		}
		if j++; j == len(s.b) {
			return "", false
		}
		switch s.b[j] {
		case '"', '\\', '/':
			out = append(out, s.b[j])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // \u, or invalid
			return "", false
		}
	}
	return "", false
}

// boolean reads true or false.
func (s *jsonScan) boolean() (bool, bool) {
	s.ws()
	switch {
	case bytes.HasPrefix(s.b[s.i:], []byte("true")):
		s.i += 4
		return true, true
	case bytes.HasPrefix(s.b[s.i:], []byte("false")):
		s.i += 5
		return false, true
	}
	return false, false
}

// integer reads an integer of at most 18 digits (no fraction or exponent).
func (s *jsonScan) integer() (int, bool) {
	s.ws()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	d := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if n := j - d; n == 0 || n > 18 || (n > 1 && s.b[d] == '0') {
		return 0, false
	}
	v, err := strconv.Atoi(string(s.b[s.i:j]))
	if err != nil {
		return 0, false
	}
	s.i = j
	return v, true
}

// object reads an object whose keys field handles (false: not the fast path's), each key once;
// field receives the key's bit among keys.
func (s *jsonScan) object(keys []string, field func(k int) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	seen := 0
	for {
		key, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		k := -1
		for i, name := range keys {
			if key == name {
				k = i
				break
			}
		}
		if k < 0 || seen&(1<<k) != 0 || !field(k) {
			return false
		}
		seen |= 1 << k
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

var (
	sendKeys      = []string{"from", "smsRecipients", "message", "smsSendOptions"}
	recipientKeys = []string{"to", "repeatabilityRequestId", "repeatabilityFirstSent"}
	optionKeys    = []string{"enableDeliveryReport", "tag", "validityPeriodSeconds", "deliveryReportTimeoutInSeconds"}
)

// fastSendRequest decodes the plain shape of a POST /sms body; false leaves it to
// encoding/json (req may then hold part of it).
func fastSendRequest(b []byte, req *smsSendRequest) bool {
	s := &jsonScan{b: b}
	ok := s.object(sendKeys, func(k int) bool {
		switch k {
		case 0, 2:
			v, ok := s.str()
			if k == 0 {
				req.From = &v
			} else {
				req.Message = &v
			}
			return ok
		case 1:
			return s.recipients(req)
		default:
			o := &smsSendOptions{}
			req.Options = o
			return s.object(optionKeys, func(k int) bool {
				var ok bool
				switch k {
				case 0:
					o.EnableDeliveryReport, ok = s.boolean()
				case 1:
					o.Tag, ok = s.str()
				default:
					var v int
					v, ok = s.integer()
					if k == 2 {
						o.ValidityPeriodSeconds = &v
					} else {
						o.DeliveryReportTimeoutInSeconds = &v
					}
				}
				return ok
			})
		}
	})
	s.ws()
	return ok && s.i == len(b)
}

// recipients reads the smsRecipients array.
func (s *jsonScan) recipients(req *smsSendRequest) bool {
	if !s.next('[') {
		return false
	}
	req.SMSRecipients = make([]smsRecipientJSON, 0, 1)
	if s.next(']') {
		return true
	}
	for {
		var rc smsRecipientJSON
		if !s.object(recipientKeys, func(k int) bool {
			var ok bool
			switch k {
			case 0:
				rc.To, ok = s.str()
			case 1:
				rc.RepeatabilityRequestID, ok = s.str()
			default:
				rc.RepeatabilityFirstSent, ok = s.str()
			}
			return ok
		}) {
			return false
		}
		req.SMSRecipients = append(req.SMSRecipients, rc)
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// writeSendResponse writes the 202 of POST /sms: the bytes WriteJSON would write.
func writeSendResponse(w http.ResponseWriter, items []smsSendResponseItem) {
	b := make([]byte, 0, 64+160*len(items))
	b = append(b, `{"value":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"to":`...)
		b = appendJSONString(b, it.To)
		if it.MessageID != "" {
			b = append(b, `,"messageId":`...)
			b = appendJSONString(b, it.MessageID)
		}
		b = append(b, `,"httpStatusCode":`...)
		b = strconv.AppendInt(b, int64(it.HTTPStatusCode), 10)
		if it.RepeatabilityResult != "" {
			b = append(b, `,"repeatabilityResult":`...)
			b = appendJSONString(b, it.RepeatabilityResult)
		}
		b = append(b, `,"successful":`...)
		b = strconv.AppendBool(b, it.Successful)
		if it.ErrorMessage != "" {
			b = append(b, `,"errorMessage":`...)
			b = appendJSONString(b, it.ErrorMessage)
		}
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
}

// appendJSONString appends s as json.Encoder writes it: as is when it is printable ASCII
// with nothing to escape (phone numbers, ids), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

package api

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
)

// sendBodies are POST /sms bodies the fast decoder takes, and some it leaves to encoding/json.
var sendBodies = []string{
	`{"from":"+14255550100","smsRecipients":[{"to":"+14255550101","repeatabilityFirstSent":"Thu, 03 Dec 2026 15:00:00 GMT","repeatabilityRequestId":"0f8fad5b-d9cb-469f-a165-70867728950e"}],"message":"hello","smsSendOptions":{"enableDeliveryReport":false}}`,
	` { "from" : "+1" , "message" : "h\"i\\ \/ \b\f\n\r\t é 😀" , "smsRecipients" : [ { "to" : "+2" } , { } ] , "smsSendOptions" : { "tag" : "t" , "enableDeliveryReport" : true , "validityPeriodSeconds" : -0 , "deliveryReportTimeoutInSeconds" : 120 } } `,
	`{"from":"+1","smsRecipients":[],"message":""}`,
	`{}`,
	`{"from":"\u002b1","smsRecipients":[{"to":"+2"}],"message":"x"}`,
	`{"From":"+1","smsRecipients":[{"to":"+2"}],"message":"x"}`,
	`{"from":"+1","from":"+3","smsRecipients":[{"to":"+2"}],"message":"x"}`,
	`{"from":null,"smsRecipients":null,"message":"x","smsSendOptions":null}`,
	`{"from":"+1","smsRecipients":[{"to":"+2","x":1}],"message":"x","extra":[1,{"a":null}]}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x","smsSendOptions":{"validityPeriodSeconds":1.5}}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x","smsSendOptions":{"validityPeriodSeconds":0123}}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x","smsSendOptions":{"validityPeriodSeconds":12345678901234567890}}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x","smsSendOptions":{"enableDeliveryReport":"yes"}}`,
	`{"from":1,"smsRecipients":[{"to":"+2"}],"message":"x"}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x"} x`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"bad` + "\xff" + `utf8"}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"},],"message":"x"}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x",}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"tab	raw"}`,
	`{"from":"+1","smsRecipients":[{"to":"+2"}],"message":"x","smsSendOptions":{"enableDeliveryReport":truex}}`,
	`[]`,
	``,
	`   `,
}

// checkSendJSON: when the fast decoder takes a body, encoding/json takes it too and decodes the
// same; decodeSendRequest answers exactly as DecodeJSON.
func checkSendJSON(t *testing.T, body []byte) {
	var fast smsSendRequest
	fastOK := fastSendRequest(body, &fast)
	var std smsSendRequest
	stdErr := decodeJSON(body, &std, false)
	if fastOK && (stdErr != nil || !reflect.DeepEqual(fast, std)) {
		t.Fatalf("%q: fast %+v, encoding/json %+v %v", body, fast, std, stdErr)
	}
	var got smsSendRequest
	err := decodeSendRequest(body, &got)
	if (err == nil) != (stdErr == nil) || (err != nil && err.Error() != stdErr.Error()) || !reflect.DeepEqual(got, std) {
		t.Fatalf("%q: decodeSendRequest %+v %v, DecodeJSON %+v %v", body, got, err, std, stdErr)
	}
}

func TestSendRequestJSON(t *testing.T) {
	fastCount := 0
	for _, b := range sendBodies {
		checkSendJSON(t, []byte(b))
		var r smsSendRequest
		if fastSendRequest([]byte(b), &r) {
			fastCount++
		}
	}
	if fastCount != 4 {
		t.Fatalf("fast path took %d of the bodies, want 4", fastCount)
	}
}

// checkSendResponse: writeSendResponse writes what WriteJSON writes.
func checkSendResponse(t *testing.T, items []smsSendResponseItem) {
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	writeSendResponse(a, items)
	WriteJSON(b, 202, valueList[smsSendResponseItem]{Value: items})
	if a.Code != b.Code || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) || !reflect.DeepEqual(a.Header(), b.Header()) {
		t.Fatalf("writeSendResponse %d %v %q\nWriteJSON %d %v %q", a.Code, a.Header(), a.Body, b.Code, b.Header(), b.Body)
	}
}

func TestSendResponseJSON(t *testing.T) {
	checkSendResponse(t, []smsSendResponseItem{})
	checkSendResponse(t, []smsSendResponseItem{{To: "+14255550100", MessageID: "m1", HTTPStatusCode: 202, Successful: true, RepeatabilityResult: "accepted"},
		{To: "12<3>&\"\\\n\u2028é\xff", HTTPStatusCode: 400, ErrorMessage: `Invalid To phone number "12345": not E.164`}})
}

func FuzzSMSJSON(f *testing.F) {
	for _, b := range sendBodies {
		f.Add([]byte(b), "+1", "m", "rejected", "error <x>", 202, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, to, id, rep, msg string, status int, ok bool) {
		checkSendJSON(t, body)
		checkSendResponse(t, []smsSendResponseItem{{To: to, MessageID: id, HTTPStatusCode: status, RepeatabilityResult: rep, Successful: ok, ErrorMessage: msg}})
	})
}

// TestQueryValue: queryValue answers as url.Values.Get of the parsed query.
func TestQueryValue(t *testing.T) {
	for _, raw := range []string{"", "api-version=2021-03-07", "a=1&api-version=2026-01-23&api-version=x", "api-version", "api-version=",
		"api%2Dversion=2021-03-07", "x=%zz&api-version=1", "api-version=2021%2D03%2D07", "api-version=a+b", "a;b=1&api-version=2", "&&api-version=3&"} {
		if got, want := queryValue(raw, "api-version"), (&url.URL{RawQuery: raw}).Query().Get("api-version"); got != want {
			t.Errorf("%q: %q, want %q", raw, got, want)
		}
	}
}

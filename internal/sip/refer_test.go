package sip_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip"
)

const transferNumber = "+14155550177" // one of telgw's numbers, routed to a second PBX

// referEnv: a carrier (trunk carrier1) calls ourNumber, routed to a PBX SIPp that transfers the
// call; transferNumber routes to a second SIPp; numbers in +1212 go out by trunk carrier2.
func referEnv(t *testing.T) (e *env, pbxPort, targetPort, trunkPort int) {
	sippPath(t)
	pbxPort, targetPort, trunkPort = freePort(t, pbxIP), freePort(t, pbxIP), freePort(t, carrier2IP)
	out := carrierTrunk("carrier2", carrier2IP, trunkPort)
	out.Username, out.Password = "", ""
	e = newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP)), out},
		routes: []sip.OutboundRoute{{Name: "nyc", NumberPattern: `\+1212\d{7}`, Trunks: []string{"carrier2"}}},
	})
	e.router.set(ourNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:pbx@%s:%d", pbxIP, pbxPort)})
	e.router.set(transferNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:target@%s:%d", pbxIP, targetPort)})
	return e, pbxPort, targetPort, trunkPort
}

// TestReferBlindTransfer: the PBX a carrier's call reached transfers it (REFER, RFC 5589 §6)
// to one of telgw's numbers and, as a customer's leg may, out through a trunk. It gets 202, a
// NOTIFY with sipfrag 100 Trying and one with 200 OK, then telgw's BYE; the caller ends up
// talking to the target (its RTP echoed back from there) and hangs up there; the CDR shows
// the three legs.
func TestReferBlindTransfer(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		targetIP     string
		kind         calls.LegKind
	}{
		{"own number", "sip:" + transferNumber + "@" + telgwIP, pbxIP, calls.LegEndpoint},
		{"out by a trunk", "tel:+12125550123", carrier2IP, calls.LegCarrier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, pbxPort, targetPort, trunkPort := referEnv(t)
			port := targetPort
			if tc.targetIP == carrier2IP {
				port = trunkPort
			}
			target := e.start("target", tc.targetIP, port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, tc.targetIP)))
			pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_refer.xml", "REFER_TARGET", tc.target, "FINAL_STATUS", "200 OK"),
				"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
			caller := e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac.xml"),
				e.addr, "-s", ourNumber, "-key", "caller", otherNumber, "-m", "1", "-d", "4000", "-mp", strconv.Itoa(freePort(t, carrierIP)))
			pbx.wait(t, 20*time.Second)
			relayed := e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"})
			caller.wait(t, 30*time.Second)
			target.wait(t, 20*time.Second)
			// The caller's tone, echoed by the target, after the PBX left.
			if n := e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}) - relayed; n < 60 {
				t.Errorf("%v RTP packets relayed after the transfer, want >= 60 (the caller talking to the target)", n)
			}
			cdr := e.cdrs.wait(t, 1)[0]
			if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || len(cdr.Legs) != 3 {
				t.Fatalf("cdr %+v", cdr)
			}
			if l := cdr.Legs[1]; l.Kind != tc.kind || l.Transferred || l.Participant.ID != tc.target[len("sip:"):len("sip:")+12] && l.Participant.ID != "+12125550123" {
				t.Errorf("target leg %+v", l)
			}
			if l := cdr.Legs[2]; !l.Transferred || l.Kind != calls.LegEndpoint {
				t.Errorf("transferor leg %+v", l)
			}
			if n := e.counter("telgw_sip_refer_total", map[string]string{"result": "transferred"}); n != 1 {
				t.Errorf("refer transferred = %v", n)
			}
			eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
		})
	}
}

// TestReferUnroutable: a REFER to a number no route reaches gets 202 and a NOTIFY 404; the
// call goes on between the caller and the PBX, and the caller's BYE reaches the PBX.
func TestReferUnroutable(t *testing.T) {
	e, pbxPort, _, _ := referEnv(t)
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_refer.xml", "REFER_TARGET", "sip:+442079460000@"+telgwIP, "FINAL_STATUS", "404 Not Found"),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac.xml"), ourNumber, otherNumber, "-d", "2500")
	pbx.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || len(cdr.Legs) != 2 || cdr.Legs[1].Transferred {
		t.Fatalf("cdr %+v", cdr)
	}
	if n := e.counter("telgw_sip_refer_total", map[string]string{"result": "failed"}); n != 1 {
		t.Errorf("refer failed = %v", n)
	}
}

// TestReferFromCaller: the carrier that called transfers the call (REFER on the caller's leg)
// to another of telgw's numbers: the PBX it reached now talks to the target; the carrier gets
// telgw's BYE; the target hangs up and the PBX gets BYE. A carrier's REFER out through the
// trunks is refused (403: the transfer policy).
func TestReferFromCaller(t *testing.T) {
	e, pbxPort, targetPort, _ := referEnv(t)
	target := e.start("target", pbxIP, targetPort, e.scenario("uas_bye.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac_refer.xml", "REFER_TARGET", "sip:"+transferNumber+"@"+telgwIP, "FINAL_STATUS", "200 OK"), ourNumber, otherNumber)
	target.wait(t, 20*time.Second)
	pbx.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || len(cdr.Legs) != 3 {
		t.Fatalf("cdr %+v", cdr)
	}
	if l := cdr.Legs[0]; l.Kind != calls.LegEndpoint || l.Participant.ID != transferNumber {
		t.Errorf("target leg %+v", l)
	}
	if l := cdr.Legs[2]; !l.Transferred || l.Kind != calls.LegCarrier {
		t.Errorf("transferor leg %+v", l)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestReferRefused: REFERs the transfer policy or telgw's support refuse get their final
// response at once and leave the call as it was: a carrier's leg may not send the call out
// through the trunks (403), a Refer-To naming a host is no number (403), attended transfer
// (Replaces) is 501, a missing Refer-To 400.
func TestReferRefused(t *testing.T) {
	hc := newHandCall(t, nil)
	e := hc.e
	withReferTo := func(cseq int, referTo string) string {
		msg := request("REFER", hc.ruri, hc.carrier.addr(), hc.from, hc.to, hc.callID, cseq, "")
		if referTo == "" {
			return msg
		}
		return strings.Replace(msg, "Content-Length:", "Refer-To: "+referTo+"\r\nContent-Length:", 1)
	}
	for i, tc := range []struct{ referTo, want string }{
		{"<sip:+12125550123@" + telgwIP + ">", "403"},
		{"<sip:alice@evil.example.com>", "403"},
		{"<sip:" + ourNumber + "@x?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>", "501"},
		{"", "400"},
	} {
		hc.carrier.send(e.addr, withReferTo(10+i, tc.referTo))
		res := hc.carrier.await("REFER response", func(m string) bool {
			return strings.HasPrefix(m, "SIP/2.0 ") && strings.Contains(header(m, "CSeq"), "REFER")
		})
		if !strings.HasPrefix(res, "SIP/2.0 "+tc.want) {
			t.Errorf("Refer-To %q: %s, want %s", tc.referTo, strings.SplitN(res, "\r\n", 2)[0], tc.want)
		}
	}
	if n := e.counter("telgw_sip_refer_total", map[string]string{"result": "forbidden"}); n != 2 {
		t.Errorf("refer forbidden = %v", n)
	}
	before := hc.callerRTP.got.Load()
	time.Sleep(300 * time.Millisecond)
	if n := hc.callerRTP.got.Load() - before; n < 5 || e.svc.ActiveCalls() != 1 {
		t.Fatalf("the call did not go on: %d packets, %d calls", n, e.svc.ActiveCalls())
	}
	hc.stopMedia()
	hc.carrier.send(e.addr, request("BYE", hc.ruri, hc.carrier.addr(), hc.from, hc.to, hc.callID, 20, ""))
	hc.pbx.await("BYE at the PBX", startsWith("BYE "))
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

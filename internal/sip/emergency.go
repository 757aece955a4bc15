package sip

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/policy"
)

// EmergencyConfig routes emergency calls (docs/EMERGENCY.md). An emergency call from a WebRTC
// user or a customer endpoint goes to Trunk with no policy, rate limit or trunk capacity check,
// with the caller's callback number in P-Asserted-Identity (RFC 3325 §9.1) and, when
// SendLocation is set, the caller's dispatchable location as a PIDF-LO by value (RFC 6442
// §3, RFC 4119, RFC 5139, RFC 5491).
type EmergencyConfig struct {
	// Trunk is the name of the trunk emergency calls go to; empty: emergency calling is off
	// and an emergency number is answered 503.
	Trunk string
	// Numbers are the dialled strings that are emergency calls. Default 911 and 933 (the
	// address-readback test number).
	Numbers []string
	// SendLocation attaches the caller's Location as PIDF-LO (for trunks that take location
	// by value). Default false: the trunk looks the callback number up in its own records.
	SendLocation bool
	// CallbackNumber is presented for callers without a number of their own (a WebRTC user
	// no number is assigned to). Default: none (such a caller's call goes out anonymous).
	CallbackNumber string
	// Locations are dispatchable locations by communication user id or E.164 number; a
	// user's own entry wins over its number's.
	Locations map[string]Location
}

// Location is a dispatchable location (RFC 5139 civic address; RFC 5491 point).
type Location struct {
	// Country is the ISO 3166 alpha-2 code ("US").
	Country string
	// State (A1), County (A2), City (A3).
	State, County, City string
	// Street (RD), StreetSuffix (STS), HouseNumber (HNO), HouseNumberSuffix (HNS).
	Street, StreetSuffix, HouseNumber, HouseNumberSuffix string
	// Floor (FLR), Room (ROOM), Location (LOC: free text such as "Suite 500"), Name (NAM).
	Floor, Room, Location, Name string
	// PostalCode (PC).
	PostalCode string
	// Latitude and Longitude (WGS 84 degrees), sent as a GML point when both are set.
	Latitude, Longitude string
}

// emergencyNumbers are the default emergency dial strings.
var emergencyNumbers = []string{"911", "933"}

func (e EmergencyConfig) withDefaults() EmergencyConfig {
	if len(e.Numbers) == 0 {
		e.Numbers = emergencyNumbers
	}
	return e
}

// Validate reports every problem, keys relative to sip.emergency; trunk names are checked
// against the trunks by Config.Validate.
func (e EmergencyConfig) Validate() error {
	var errs []string
	for i, n := range e.Numbers {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			errs = append(errs, fmt.Sprintf("numbers[%d]: %q is not a dial string of digits", i, n))
		}
	}
	if e.CallbackNumber != "" && !validE164(e.CallbackNumber) {
		errs = append(errs, fmt.Sprintf("callbackNumber: %q is not an E.164 number", e.CallbackNumber))
	}
	keys := make([]string, 0, len(e.Locations))
	for k := range e.Locations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		l := e.Locations[k]
		if l.Country == "" {
			errs = append(errs, fmt.Sprintf("locations[%q].country: must not be empty", k))
		}
		if (l.Latitude == "") != (l.Longitude == "") {
			errs = append(errs, fmt.Sprintf("locations[%q].latitude: latitude and longitude go together", k))
		}
		for name, v := range map[string]string{"latitude": l.Latitude, "longitude": l.Longitude} {
			if _, err := strconv.ParseFloat(v, 64); v != "" && err != nil {
				errs = append(errs, fmt.Sprintf("locations[%q].%s: %q is not a number", k, name, v))
			}
		}
	}
	out := make([]error, len(errs))
	for i, s := range errs {
		out[i] = errors.New(s)
	}
	return errors.Join(out...)
}

func validE164(n string) bool {
	if len(n) < 3 || len(n) > 16 || n[0] != '+' {
		return false
	}
	return strings.Trim(n[1:], "0123456789") == ""
}

// dialed is the dial string of a new INVITE (the Request-URI's user, or a tel: URI's number).
func dialed(req *sip.Request) string {
	if strings.EqualFold(req.Recipient.Scheme, "tel") {
		return req.Recipient.Host
	}
	return req.Recipient.User
}

// isEmergency reports whether req dials an emergency number and emergency calling is on.
func (f *fraudEnv) isEmergency(req *sip.Request) bool {
	return f != nil && f.emergency.Trunk != "" && slices.Contains(f.emergency.Numbers, dialed(req))
}

// emergencyDialed reports whether req dials an emergency number at all (on or off).
func (f *fraudEnv) emergencyDialed(req *sip.Request) bool {
	return f != nil && slices.Contains(f.emergency.withDefaults().Numbers, dialed(req))
}

// emergencyRoute takes an emergency call out of the normal routing: the emergency trunk, no
// policy. It reports the call to webhooks. ok false: the call was answered (503: no trunk).
func (c *call) emergencyRoute(req *sip.Request, tx sip.ServerTransaction) (string, []*trunk, bool) {
	f := c.env.fraud
	num := dialed(req)
	c.cc.SetTo(num)
	t := c.env.trunks.named(f.emergency.Trunk)
	if !f.isEmergency(req) || t == nil {
		c.env.log.Error("emergency call with no emergency trunk", "call_id", c.id, "number", num)
		c.reject(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Warning", `399 telgw "no emergency trunk is configured"`))
		return "", nil, false
	}
	c.fraud.emergency, c.fraud.dialed = true, num
	if c.fraud.callback == "" {
		c.fraud.callback = c.cc.From()
	}
	_, hasLoc := c.location()
	c.env.log.Warn("emergency call", "call_id", c.id, "number", num, "trunk", t.Name, "callback", c.fraud.callback,
		"user", c.fraud.subject.User, "credential", c.fraud.subject.Credential, "location", hasLoc && f.emergency.SendLocation)
	if f.events != nil {
		go f.events.EmergencyCall(context.WithoutCancel(c.env.stop()), policy.Emergency{ID: c.id, Dialed: num, CallbackNumber: c.fraud.callback,
			Trunk: t.Name, Subject: c.fraud.subject, Location: hasLoc && f.emergency.SendLocation, At: time.Now()})
	}
	return num, []*trunk{t}, true
}

// location is the caller's dispatchable location: its user's entry, else its number's.
func (c *call) location() (Location, bool) {
	locs := c.env.fraud.emergency.Locations
	if l, ok := locs[c.fraud.subject.User]; ok && c.fraud.subject.User != "" {
		return l, true
	}
	l, ok := locs[c.fraud.callback]
	return l, ok
}

// emergencyHeaders writes the callback number and the location into the emergency trunk's
// INVITE: P-Asserted-Identity (RFC 3325 §9.1, trusted by the emergency trunk), and with
// SendLocation a multipart/mixed body of the SDP and the PIDF-LO referenced by a Geolocation
// cid: URI with Geolocation-Routing: yes (RFC 6442 §3, §4.1, §4.2).
func (c *call) emergencyHeaders(inv *sip.Request) {
	host := c.env.cfg.Host
	if cb := c.fraud.callback; cb != "" {
		inv.AppendHeader(sip.NewHeader("P-Asserted-Identity", fmt.Sprintf("<sip:%s@%s;user=phone>", cb, host)))
	} else {
		inv.AppendHeader(sip.NewHeader("Privacy", "none"))
	}
	loc, ok := c.location()
	if !c.env.fraud.emergency.SendLocation || !ok {
		return
	}
	cid := fmt.Sprintf("%s@%s", strings.NewReplacer("@", "", "<", "", ">", "").Replace(c.id), host)
	pidf := pidfLO(c.fraud.callback, host, loc, time.Now())
	boundary := "telgw-" + sip.GenerateTagN(16)
	var b strings.Builder
	if sdp := inv.Body(); len(sdp) > 0 {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/sdp\r\n\r\n%s\r\n", boundary, sdp)
	}
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pidf+xml\r\nContent-ID: <%s>\r\n\r\n%s\r\n--%s--\r\n", boundary, cid, pidf, boundary)
	inv.RemoveHeader("Content-Type")
	inv.AppendHeader(sip.NewHeader("Content-Type", `multipart/mixed;boundary="`+boundary+`"`))
	inv.AppendHeader(sip.NewHeader("Geolocation", "<cid:"+cid+">"))
	inv.AppendHeader(sip.NewHeader("Geolocation-Routing", "yes"))
	inv.SetBody([]byte(b.String()))
}

// pidfLO is a PIDF-LO document (RFC 4119 §2.2, with the device element of RFC 4479 as RFC
// 5491 §3.4 recommends) of loc for the callback number.
func pidfLO(callback, host string, loc Location, at time.Time) string {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var civic strings.Builder
	for _, e := range [][2]string{{"country", loc.Country}, {"A1", loc.State}, {"A2", loc.County}, {"A3", loc.City},
		{"RD", loc.Street}, {"STS", loc.StreetSuffix}, {"HNO", loc.HouseNumber}, {"HNS", loc.HouseNumberSuffix},
		{"LOC", loc.Location}, {"FLR", loc.Floor}, {"ROOM", loc.Room}, {"NAM", loc.Name}, {"PC", loc.PostalCode}} {
		if e[1] != "" {
			fmt.Fprintf(&civic, "<ca:%s>%s</ca:%s>", e[0], esc(e[1]), e[0])
		}
	}
	point := ""
	if loc.Latitude != "" && loc.Longitude != "" {
		point = fmt.Sprintf(`<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>%s %s</gml:pos></gml:Point>`, esc(loc.Latitude), esc(loc.Longitude))
	}
	entity := "pres:" + esc(callback) + "@" + esc(host)
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\r\n" +
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"` +
		` xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" xmlns:gml="http://www.opengis.net/gml"` +
		` xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="` + entity + `">` +
		`<dm:device id="telgw"><gp:geopriv><gp:location-info>` +
		`<ca:civicAddress xml:lang="en">` + civic.String() + `</ca:civicAddress>` + point +
		`</gp:location-info><gp:usage-rules/><gp:method>Manual</gp:method></gp:geopriv>` +
		`<dm:timestamp>` + at.UTC().Format(time.RFC3339) + `</dm:timestamp></dm:device></presence>`
}

// emergencyAcquire takes a slot on t for an emergency call even when the trunk is at its
// maxCalls or cps: an emergency call is never refused for capacity (it counts, so release
// balances).
func (c *call) emergencyAcquire(t *trunk) bool {
	if !c.fraud.emergency {
		return false
	}
	t.active.Add(1)
	return true
}

package calls

import "regexp"

// Routing is the ACS SIP routing configuration (SipRouting 2023-03-01 SipConfiguration):
// trunks by FQDN with their signalling port, and the ordered routes.
type Routing struct {
	Trunks []ACSTrunk
	Routes []OutboundRoute
}

// ACSTrunk is a trunk as the ACS API shows it. Its FQDN is the SIP edge's trunk name.
type ACSTrunk struct {
	FQDN string
	Port int
}

// OutboundRoute is one entry of the ACS SIP routing table (SipRouting 2023-03-01 "routes"):
// calls whose E.164 number matches NumberPattern go out by Trunks, in order.
type OutboundRoute struct {
	// Name names the route.
	Name string
	// Description is free text.
	Description string
	// NumberPattern is a regular expression matched against the whole E.164 number.
	NumberPattern string
	// Trunks are trunk names (ACS uses FQDNs) tried in order.
	Trunks []string

	re *regexp.Regexp
}

// Compile checks NumberPattern; the route matches nothing until it compiled.
func (r *OutboundRoute) Compile() error {
	re, err := regexp.Compile("^(?:" + r.NumberPattern + ")$")
	if err != nil {
		return err
	}
	r.re = re
	return nil
}

// Match reports whether e164 matches the route's pattern.
func (r *OutboundRoute) Match(e164 string) bool { return r.re != nil && r.re.MatchString(e164) }

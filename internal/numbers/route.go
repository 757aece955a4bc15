package numbers

import (
	"strings"

	"github.com/telgw/telgw/internal/problem"
)

// RouteKind says who receives a number's inbound calls and messages.
type RouteKind string

// Route kinds. The zero Route (RouteDefault) leaves the decision to the transport's default
// (the SIP engine's configured handling, the SMS webhooks).
const (
	// RouteDefault: no per-number route.
	RouteDefault RouteKind = ""
	// RouteSIP: deliver calls to a SIP URI (an app's PBX or SIP endpoint).
	RouteSIP RouteKind = "sip"
	// RouteUser: ring an ACS communication user (a WebRTC client registered with a token).
	RouteUser RouteKind = "user"
	// RouteBot: hand the call to a bot / call-automation webhook URL.
	RouteBot RouteKind = "bot"
)

// Route is a small sum type: exactly one of its kinds, with the target that kind needs.
// Construct with SIPRoute, UserRoute or BotRoute (or ParseRoute); the zero value is
// RouteDefault. Its text form, stored and shown to operators, is "sip:…"/"sips:…" for SIP
// URIs, "user:8:acs:…" for users and "bot:https://…" for bots.
type Route struct {
	kind   RouteKind
	target string
}

// SIPRoute routes to a SIP or SIPS URI, e.g. "sip:+14255550123@pbx.example.com:5060".
func SIPRoute(uri string) (Route, error) {
	rest, ok := strings.CutPrefix(uri, "sips:")
	if !ok {
		rest, ok = strings.CutPrefix(uri, "sip:")
	}
	if !ok || rest == "" {
		return Route{}, problem.Invalid("route", "%q is not a sip: or sips: URI", uri)
	}
	if strings.ContainsAny(uri, " \t\r\n<>\"") {
		return Route{}, problem.Invalid("route", "%q is not a valid SIP URI", uri)
	}
	return Route{kind: RouteSIP, target: uri}, nil
}

// UserRoute routes to an ACS communication user id ("8:acs:…").
func UserRoute(id string) (Route, error) {
	if !strings.HasPrefix(id, "8:acs:") || strings.ContainsAny(id, " \t\r\n") {
		return Route{}, problem.Invalid("route", "%q is not a communication user id (8:acs:…)", id)
	}
	return Route{kind: RouteUser, target: id}, nil
}

// BotRoute routes to a bot's https (or http, for local development) callback URL.
func BotRoute(url string) (Route, error) {
	if !(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) || strings.ContainsAny(url, " \t\r\n") {
		return Route{}, problem.Invalid("route", "%q is not an http(s) URL", url)
	}
	return Route{kind: RouteBot, target: url}, nil
}

// ParseRoute reads a route's text form; "" is RouteDefault.
func ParseRoute(s string) (Route, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Route{}, nil
	case strings.HasPrefix(s, "sip:"), strings.HasPrefix(s, "sips:"):
		return SIPRoute(s)
	case strings.HasPrefix(s, "user:"):
		return UserRoute(strings.TrimPrefix(s, "user:"))
	case strings.HasPrefix(s, "bot:"):
		return BotRoute(strings.TrimPrefix(s, "bot:"))
	}
	return Route{}, problem.Invalid("route", "%q: want sip:URI, sips:URI, user:8:acs:ID or bot:URL", s)
}

// Kind is the route's kind.
func (r Route) Kind() RouteKind { return r.kind }

// Target is the SIP URI, user id or bot URL ("" for RouteDefault).
func (r Route) Target() string { return r.target }

// String is the text form ParseRoute reads.
func (r Route) String() string {
	switch r.kind {
	case RouteSIP:
		return r.target
	case RouteUser:
		return "user:" + r.target
	case RouteBot:
		return "bot:" + r.target
	}
	return ""
}

// IsDefault reports whether no per-number route is set.
func (r Route) IsDefault() bool { return r.kind == RouteDefault }

// Routing is what the call and SMS engines need to know about one of telgw's numbers.
type Routing struct {
	E164    E164
	Carrier string       // carrier the number came from ("" when the import named none)
	Caps    Capabilities // purchased capabilities (calling, sms)
	Route   Route
}

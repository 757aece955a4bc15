package calls

import (
	"context"
	"errors"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// Route is where calls to one of telgw's numbers go. It is a closed sum type: SIPRoute,
// UserRoute or BotRoute. A nil Route means the number has no route of its own (the transport's
// default handling, 480 today).
type Route interface{ isRoute() }

// SIPRoute bridges the call to a SIP URI (a PBX, a customer's softswitch).
type SIPRoute struct {
	// URI is the SIP URI to send the INVITE to, e.g. sip:pbx@203.0.113.5:5060;transport=tcp.
	URI string
}

// UserRoute sends a number's calls to a WebRTC user: an ACS communication user id
// (8:acs:…) whose devices register over SIP over WebSocket.
type UserRoute struct {
	// User is the communication user id.
	User string
}

// BotRoute hands the call to an app that controls it (Call Automation): the callback URL
// the number was routed to.
type BotRoute struct {
	// URL is the app's callback URL.
	URL string
}

func (SIPRoute) isRoute()  {}
func (UserRoute) isRoute() {}
func (BotRoute) isRoute()  {}

// ErrUnknownNumber is what a Router returns (possibly wrapped) for a number telgw does not own
// or that has no calling capability; the SIP edge answers 404 Not Found (RFC 3261 §21.4.5).
var ErrUnknownNumber = errors.New("calls: unknown number")

// Router maps one of telgw's E.164 numbers to its call route. A number with no route returns
// (nil, nil).
type Router interface {
	CallRoute(ctx context.Context, e164 string) (Route, error)
}

// NumberRoutes is what the routing decision reads from the numbers domain.
type NumberRoutes interface {
	NumberRoute(ctx context.Context, e164 string) (numbers.Routing, error)
}

// NumberRouter is the routing decision: a purchased number with calling capability routes by
// its per-number route (numbers.Route); numbers telgw does not own, or that cannot take or
// place calls, are ErrUnknownNumber.
type NumberRouter struct {
	// Numbers is the number inventory; nil makes every number unknown.
	Numbers NumberRoutes
}

// CallRoute implements Router.
func (r NumberRouter) CallRoute(ctx context.Context, e164 string) (Route, error) {
	if r.Numbers == nil {
		return nil, ErrUnknownNumber
	}
	rt, err := r.Numbers.NumberRoute(ctx, e164)
	if errors.Is(err, problem.ErrNotFound) || problem.KindOf(err) == problem.KindInvalid {
		return nil, ErrUnknownNumber
	}
	if err != nil {
		return nil, err
	}
	if !rt.Caps.Calling.Inbound() && !rt.Caps.Calling.Outbound() {
		return nil, ErrUnknownNumber
	}
	switch rt.Route.Kind() {
	case numbers.RouteSIP:
		return SIPRoute{URI: rt.Route.Target()}, nil
	case numbers.RouteUser:
		return UserRoute{User: rt.Route.Target()}, nil
	case numbers.RouteBot:
		return BotRoute{URL: rt.Route.Target()}, nil
	}
	return nil, nil
}

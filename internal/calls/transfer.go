package calls

import (
	"net/url"
	"time"
)

// Transfer records that the party on side (0: the caller's leg, 1: the callee's) left the
// call by a transfer (SIP REFER, RFC 5589; an app's transferToParticipant) and l, the
// transfer target's answered leg, took its place: the other party stays. The transferor's
// leg is kept, ended and marked Transferred, so the CDR shows every leg the call had (its
// From, To and Trunk stay those of the call as it arrived).
func (c *Call) Transfer(side int, l Leg, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.State < Answered {
		l.State = Answered
	}
	if side < 0 || side >= len(c.legs) || side > 1 {
		c.legs = append(c.legs, &l)
		return
	}
	old := *c.legs[side]
	old.State, old.Transferred, old.Left = Ended, true, at
	c.legs[side] = &l
	c.legs = append(c.legs, &old)
}

// cdrLegs is the legs as a CDR keeps them: an app's callback URL reduced to its host (a
// URL's path and query may carry the app's secrets; the host says which app it was).
func cdrLegs(legs []*Leg) []Leg {
	out := make([]Leg, len(legs))
	for i, l := range legs {
		out[i] = *l
		if l.Participant.Kind == App {
			out[i].Participant.ID = AppHost(l.Participant.ID)
		}
	}
	return out
}

// AppHost is the host of an app's callback URL ("" when it is not a URL).
func AppHost(callback string) string {
	u, err := url.Parse(callback)
	if err != nil {
		return ""
	}
	return u.Host
}

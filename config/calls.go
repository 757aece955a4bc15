package config

import "fmt"

// Calls configures the call domain (internal/calls): how calls reach apps (Call Automation).
type Calls struct {
	// IncomingCallEvents, when true, hands a call to one of the resource's numbers that has no
	// route of its own to the apps as a number routed to "bot:" is: IncomingCall is published
	// to the Event Grid webhooks subscribed to it, the caller hears ringing, and an app may
	// answer, reject or redirect it (ACS's behaviour for every number). Default false: such a
	// call is refused (480), as before.
	IncomingCallEvents bool `yaml:"incomingCallEvents"`
	// MaxParticipants is how many people (phone numbers and communication users) one call
	// connection holds besides the app: addParticipant and createCall's targets beyond it are
	// refused (400). From the third person on, the call's audio is mixed (a conference).
	// Default 16; 2–100.
	MaxParticipants int `yaml:"maxParticipants"`
}

func (c Calls) validate() []error {
	if c.MaxParticipants < 2 || c.MaxParticipants > 100 {
		return []error{fmt.Errorf("calls.maxParticipants: %d must be 2–100", c.MaxParticipants)}
	}
	return nil
}

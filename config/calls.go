package config

// Calls configures the call domain (internal/calls): how calls reach apps (Call Automation).
type Calls struct {
	// IncomingCallEvents, when true, hands a call to one of the resource's numbers that has no
	// route of its own to the apps as a number routed to "bot:" is: IncomingCall is published
	// to the Event Grid webhooks subscribed to it, the caller hears ringing, and an app may
	// answer, reject or redirect it (ACS's behaviour for every number). Default false: such a
	// call is refused (480), as before.
	IncomingCallEvents bool `yaml:"incomingCallEvents"`
}

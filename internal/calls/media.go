package calls

// MediaLeg is one party's media endpoint: RTP and RTCP in and out (a plain RTP leg toward a
// carrier or PBX, a WebRTC leg toward a browser, a bot's media). internal/bridge's legs
// implement it. Reads block until a packet arrives or the leg is closed.
type MediaLeg interface {
	ReadRTP(buf []byte) (int, error)
	WriteRTP(p []byte) error
	ReadRTCP(buf []byte) (int, error)
	WriteRTCP(p []byte) error
	Close() error
}

// MediaBridge relays media between a call's two legs and watches that it flows.
type MediaBridge interface {
	// Arm starts the media timeout (once the call is answered).
	Arm()
	// SetSending says whether leg (0 or 1) is expected to send (RFC 3264 §5.1 direction).
	SetSending(leg int, sending bool)
	// Done is closed when the bridge stops (media timeout or Close).
	Done() <-chan struct{}
	// Close stops relaying.
	Close()
}

// Media bridges legs; internal/bridge's Relay is one (through the SIP edge's adapter).
type Media interface {
	Bridge(a, b MediaLeg) MediaBridge
}

package app

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Listeners are the addresses a running node is bound to. With port 0 in the configuration the
// kernel picks the port; this is how operators' scripts and the tests learn it without probing
// for a free port first (which races with every other process on the machine).
type Listeners struct {
	// HTTP is the REST/WebSocket listener, host:port.
	HTTP string `json:"http"`
	// SIP is the SIP UDP and TCP listener, host:port (empty when SIP is off).
	SIP string `json:"sip,omitempty"`
	// TURN is the STUN/TURN UDP and TCP listener, host:port (empty when TURN is off).
	TURN string `json:"turn,omitempty"`
	// Metrics is the /metrics listener when metrics.addr is set.
	Metrics string `json:"metrics,omitempty"`
}

// ListenersFile is the file in the data directory that Run writes the bound addresses to,
// atomically and after the connection string: once it exists, both are complete.
const ListenersFile = "listeners.json"

// Listeners reports the bound addresses; call it after Listen.
func (a *App) Listeners() Listeners {
	var l Listeners
	if a.listener != nil {
		l.HTTP = a.listener.Addr().String()
	}
	if a.metricsListener != nil {
		l.Metrics = a.metricsListener.Addr().String()
	}
	if a.SIP != nil {
		l.SIP = a.SIP.Addr().String()
	}
	if a.TURN != nil {
		host, _, err := net.SplitHostPort(a.Config.TURN.Addr)
		if err != nil || host == "" {
			host = "0.0.0.0"
		}
		l.TURN = net.JoinHostPort(host, strconv.Itoa(a.TURN.Port()))
	}
	return l
}

func (a *App) writeListeners() error {
	b, err := json.Marshal(a.Listeners())
	if err != nil {
		return err
	}
	p := filepath.Join(a.Config.DataDir, ListenersFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write listeners: %w", err)
	}
	return os.Rename(tmp, p)
}

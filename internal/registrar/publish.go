package registrar

import (
	"context"
	"time"
)

// touch marks identity's bindings as changed and wakes Publish; l.mu is held.
func (l *Location) touch(identity string) {
	l.dirty[identity] = struct{}{}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// PublishFunc writes identity's current bindings on this node (none: all gone) to the shared
// location service.
type PublishFunc func(ctx context.Context, identity string, live []Contact) error

// Publish copies every change of the bindings to pub until ctx ends: after each change (a
// REGISTER, a closed connection, an expiry) it writes the changed users' live bindings,
// so the other nodes of a cluster learn within milliseconds where to send a user's calls. A
// write that fails is retried after retry. Writes run in one goroutine, so a user's bindings
// reach the store in the order they changed.
func (l *Location) Publish(ctx context.Context, pub PublishFunc, retry time.Duration) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.kick:
		}
		l.mu.Lock()
		dirty := l.dirty
		l.dirty = map[string]struct{}{}
		snap := make(map[string][]Contact, len(dirty))
		now := l.now()
		for id := range dirty {
			var cs []Contact
			for _, c := range l.users[id] {
				if c.Expires.After(now) {
					cs = append(cs, c)
				}
			}
			snap[id] = cs
		}
		l.mu.Unlock()
		failed := false
		for id, cs := range snap {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := pub(wctx, id, cs)
			cancel()
			if err != nil {
				failed = true
				l.mu.Lock()
				l.touch(id)
				l.mu.Unlock()
			}
		}
		if failed {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
		}
	}
}

// TouchAll marks every user with bindings here as changed, so Publish writes them all again
// (the cluster may have dropped them while this node was out of it).
func (l *Location) TouchAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.users {
		l.touch(id)
	}
}

// Key identifies the binding among its user's on this node: the +sip.instance when the device
// sent one, else the contact URI.
func (c Contact) Key() string { return c.key() }

// Count is the number of live bindings on this node.
func (l *Location) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	now := l.now()
	for _, m := range l.users {
		for _, c := range m {
			if c.Expires.After(now) {
				n++
			}
		}
	}
	return n
}

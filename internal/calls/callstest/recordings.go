// Package callstest holds test doubles of the call domain's stores for the packages that test
// against calls (the SQL stores pass the same cases in storetest).
package callstest

import (
	"context"
	"sync"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

var _ calls.RecordingStore = (*Recordings)(nil)

// Recordings is a calls.RecordingStore in memory.
type Recordings struct {
	mu sync.Mutex
	m  map[string]calls.Recording
}

// NewRecordings returns an empty store holding recs.
func NewRecordings(recs ...calls.Recording) *Recordings {
	s := &Recordings{m: map[string]calls.Recording{}}
	for _, r := range recs {
		s.m[r.ID] = r
	}
	return s
}

// RecordingPut implements calls.RecordingStore.
func (s *Recordings) RecordingPut(_ context.Context, r calls.Recording) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.ID] = r
	return nil
}

// RecordingGet implements calls.RecordingStore.
func (s *Recordings) RecordingGet(_ context.Context, id string) (calls.Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[id]; ok {
		return r, nil
	}
	return calls.Recording{}, problem.ErrNotFound
}

// RecordingByDocument implements calls.RecordingStore.
func (s *Recordings) RecordingByDocument(_ context.Context, doc string) (calls.Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.m {
		if r.DocumentID == doc {
			return r, nil
		}
	}
	return calls.Recording{}, problem.ErrNotFound
}

// RecordingDelete implements calls.RecordingStore.
func (s *Recordings) RecordingDelete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// RecordingsUnfinished implements calls.RecordingStore.
func (s *Recordings) RecordingsUnfinished(_ context.Context, node string) ([]calls.Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []calls.Recording
	for _, r := range s.m {
		if r.Node == node && (r.State == calls.RecActive || r.State == calls.RecPaused) {
			out = append(out, r)
		}
	}
	return out, nil
}

package sip

import "github.com/telgw/telgw/internal/media/record"

// SetCreateRecorder replaces how recordings make their files (tests inject write errors).
func SetCreateRecorder(f func(path string, cfg record.Config) (*record.Recorder, error)) (restore func()) {
	old := createRecorder
	createRecorder = f
	return func() { createRecorder = old }
}

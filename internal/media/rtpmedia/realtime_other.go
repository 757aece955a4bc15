//go:build !linux

package rtpmedia

import (
	"errors"
	"time"
)

func setRealtime(int) error { return errors.New("real-time scheduling is only supported on Linux") }

func threadSleep(d time.Duration) { time.Sleep(d) }

package rtpmedia

import (
	"time"

	"golang.org/x/sys/unix"
)

// setRealtime gives the calling OS thread SCHED_FIFO at prio (sched_setattr(2)); it needs
// CAP_SYS_NICE or an RLIMIT_RTPRIO allowance.
func setRealtime(prio int) error {
	return unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(prio)}, 0)
}

// threadSleep blocks the calling thread itself, so a real-time thread wakes on its own
// priority instead of waiting for a normal-priority thread to notice a Go timer.
func threadSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
